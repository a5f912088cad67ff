-- ARGV: prefix, now, reservation_id, event_id, user_id, idem slot, fingerprint, quantity,
-- hold_ms, idem_ms, admission slot ('' = not counted), holds per admission, then specific seat
-- ids (validated, distinct) or none.
-- Holds all requested seats or none: a seat is held only if it is free.
-- Replies {0, 1, reservation...} created, {0, 0, reservation...} replayed, {-1} no event,
-- {-2} key reused with other parameters, {-3, seat...} seats unavailable, {-8, limit} the
-- admission already has `limit` active holds.
if redis.call('EXISTS', K_EV) == 0 then return {-1} end
local idem = P .. 'idem:' .. ARGV[6]
-- The slot names a reservation (see `replayed` in lib.lua).
local prior, reused = replayed(idem, rkey, ARGV[7])
if reused then return {-2} end
if prior then return reply(0, 0, prior) end
-- The admission's holds: a set of reservation ids. Only PENDING ones before their deadline
-- count; the others (released, expired, settled, gone) are dropped from it here.
local adm = nil
if ARGV[11] ~= '' then
  adm = P .. 'adm:' .. ARGV[11]
  local active = 0
  for _, rid in ipairs(redis.call('SMEMBERS', adm)) do
    local h = redis.call('HMGET', rkey(rid), 'st', 'exp')
    if tonumber(h[1]) == 1 and tonumber(h[2]) > NOW then
      active = active + 1
    else
      redis.call('SREM', adm, rid)
    end
  end
  if active >= tonumber(ARGV[12]) then return {-8, ARGV[12]} end
end
local id = ARGV[3]
local qty = tonumber(ARGV[8])
local seats = {}
if #ARGV >= 13 then
  local bad = {-3}
  for i = 13, #ARGV do
    if redis.call('HGET', K_SEAT, ARGV[i]) ~= 'F' then bad[#bad + 1] = ARGV[i] end
    seats[#seats + 1] = ARGV[i]
  end
  if #bad > 1 then return bad end
  for _, s in ipairs(seats) do redis.call('ZREM', K_FREE, s) end
else
  if redis.call('ZCARD', K_FREE) < qty then return {-3} end
  seats = redis.call('ZRANGE', K_FREE, 0, qty - 1)
  redis.call('ZREMRANGEBYRANK', K_FREE, 0, qty - 1)
end
for _, s in ipairs(seats) do redis.call('HSET', K_SEAT, s, 'H:' .. id) end
local exp = NOW + tonumber(ARGV[9])
local ev = redis.call('HMGET', K_EV, 'price', 'cur')
redis.call('HSET', rkey(id), 'id', id, 'ev', ARGV[4], 'user', ARGV[5], 'st', 1,
  'seats', table.concat(seats, ','), 'price', ev[1], 'cur', ev[2], 'cat', NOW, 'exp', exp,
  'fp', ARGV[7])
redis.call('ZADD', K_HOLDS, exp, id)
remember(idem, id, tonumber(ARGV[10]))
if adm then
  redis.call('SADD', adm, id)
  -- The TTL only collects garbage: the set matters while its newest hold can be pending.
  redis.call('PEXPIRE', adm, tonumber(ARGV[9]) + 60000)
end
return reply(0, 1, rkey(id))
