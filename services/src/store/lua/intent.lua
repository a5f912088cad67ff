-- ARGV: prefix, now, intent_id, reservation_id, scenario, idem slot, fingerprint, idem_ms,
-- provider's id ('' for none).
-- Creates a pending intent for a reservation that is pending and within its hold.
-- Replies {0, 1, intent...} created, {0, 0, intent...} replayed, {-2} key reused with other
-- parameters, {-4} no reservation, {-5} hold expired, {-6, status} not pending, {-9} the
-- provider's id names another intent (`ppi`: provider's id -> intent id, one per id).
local idem = P .. 'pidem:' .. ARGV[6]
-- The slot names an intent (see `replayed` in lib.lua).
local prior, reused = replayed(idem, ikey, ARGV[7])
if reused then return {-2} end
if prior then return reply(0, 0, prior) end
local rk = rkey(ARGV[4])
if redis.call('EXISTS', rk) == 0 then return {-4} end
local r = redis.call('HMGET', rk, 'st', 'exp', 'price', 'seats', 'cur')
local st = tonumber(r[1])
if st == 1 and tonumber(r[2]) <= NOW then return {-5} end
if st ~= 1 then return {-6, st} end
local pid = ARGV[9] or ''
if pid ~= '' and redis.call('HEXISTS', P .. 'ppi', pid) == 1 then return {-9} end
local n = #split(r[4])
local id = ARGV[3]
redis.call('HSET', ikey(id), 'id', id, 'res', ARGV[4], 'amt', tonumber(r[3]) * n, 'cur', r[5],
  'scn', ARGV[5], 'st', 1, 'cat', NOW, 'exp', r[2], 'fp', ARGV[7], 'pid', pid)
if pid ~= '' then redis.call('HSET', P .. 'ppi', pid, id) end
remember(idem, id, tonumber(ARGV[8]))
return reply(0, 1, ikey(id))
