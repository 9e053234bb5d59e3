"""Usage analytics: the rollups the recorder keeps (folded exactly once per batch)
and the pipelines and shapes the stats API reads them with."""
