-- Entries were forwarded: acknowledge and delete them, and forget their retry state. One call
-- for any number of entries (the consumer batches the acknowledgements of many forwards).
-- KEYS[1] inbox stream, KEYS[2] retry schedule, KEYS[3] attempts.
-- ARGV[1] group, ARGV[2..] entry ids (at most a few thousand: unpack's stack limit).
-- Deleting keeps the stream as short as the backlog (the dedup marks, not the stream, remember
-- what was seen). Returns how many this call acknowledged (an entry another consumer had
-- already acknowledged is not counted).
local n = redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 2))
redis.call('XDEL', KEYS[1], unpack(ARGV, 2))
redis.call('ZREM', KEYS[2], unpack(ARGV, 2))
redis.call('HDEL', KEYS[3], unpack(ARGV, 2))
return n
