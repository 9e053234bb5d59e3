"""Conversations: the fields a request document carries about its conversation
(grouping, turns, search words), the per-conversation summaries the recorder
keeps, and the read side that lists, searches and rebuilds threads."""
