-- Forgets a kept outcome (reported, or given up). KEYS as in outcome_put.lua, ARGV[1] intent id.
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
