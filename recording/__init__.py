"""Recording: the hand-off from the proxy's workers to the pod's recorder process.

Workers append every finished exchange to an on-disk journal (`recording.journal`)
without waiting on anything; the recorder reads it, stores documents in MongoDB and
lets the journal delete what it has consumed.
"""
