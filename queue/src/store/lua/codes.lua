-- codes: ARGV[3] = 'add' or 'del', ARGV[4..] = SHA-256 hashes of access codes (never the codes).
-- Reply: {-1} unknown event | {n} codes added (new ones only: a known hash keeps its state,
-- spent or not) or removed. The codes hash lives beside the queue in the event's slot, so the
-- join script spends a code atomically with the place it gives.
if redis.call('EXISTS', EV) == 0 then return {-1} end
local CODES = P .. 'codes'
local n = 0
if ARGV[3] == 'add' then
  for i = 4, #ARGV do
    n = n + redis.call('HSETNX', CODES, ARGV[i], '1')
  end
else
  for i = 4, #ARGV do
    n = n + redis.call('HDEL', CODES, ARGV[i])
  end
end
return {n}
