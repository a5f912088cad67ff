-- An entry was forwarded: acknowledge and delete it, and forget its retry state.
-- KEYS[1] inbox stream, KEYS[2] retry schedule, KEYS[3] attempts. ARGV[1] group, ARGV[2] id.
-- Deleting keeps the stream as short as the backlog (the dedup marks, not the stream, remember
-- what was seen). Returns 1 if this call acknowledged it, 0 if someone already had.
local n = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[2])
return n
