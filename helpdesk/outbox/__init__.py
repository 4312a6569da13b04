"""The outbox: messages written in the same transaction as a change, sent after commit."""
