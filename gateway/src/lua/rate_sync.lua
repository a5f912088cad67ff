-- The cross-replica rate-limit sync (gateway/src/ratesync.rs): one replica's per-address
-- consumption since its last sync, added to every replica's total of the current window.
-- KEYS[1]  the window's hash, wr:{ratelimit}:<window> (one slot for every address)
-- ARGV[1]  the hash's time to live in ms (two windows and a margin)
-- ARGV[2k], ARGV[2k+1]  a field (limiter and address) and what this replica consumed
-- Returns each field's total over every replica in this window, in order.
local out = {}
for i = 2, #ARGV, 2 do
  out[#out + 1] = redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return out
