"""Request-rate and token-rate limits per key: in process, or shared through Redis."""
