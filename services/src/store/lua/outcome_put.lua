-- Keeps a simulated outcome until it is reported. KEYS[1] the event's due set (intent id ->
-- due ms), KEYS[2] the event's outcome hash (intent id -> 'approve|webhook id').
-- ARGV[1] intent id, ARGV[2] due ms, ARGV[3] the outcome, ARGV[4] '1': keep one already kept.
-- Returns 1 when stored now, 0 when one was kept.
if ARGV[4] == '1' and redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1
