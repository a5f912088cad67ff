-- info: the event's configuration, flags and statistics (read only).
-- Reply (strings): {found, aps, max, attl, idle, rto, opens | -1, flags, joined, admitted,
--         entered, waiting, ready, active, rate_m, target url | '', challenge bits,
--         page settings JSON | ''}.
local c = load_cfg()
if not c then return {'0'} end
-- Every new place takes one ticket, so the ticket counter is the number of places handed out.
local joined = tonumber(redis.call('GET', SEQ)) or 0
local st = redis.call('HMGET', EV, 'admitted', 'entered', 'url')
local out = {1, c.aps, c.max, c.attl, c.idle, c.rto, c.opens or -1, flags(c),
  joined, tonumber(st[1]) or 0, tonumber(st[2]) or 0,
  redis.call('ZCARD', Q), redis.call('ZCOUNT', R, '(' .. NOW, '+inf'),
  redis.call('ZCOUNT', A, '(' .. NOW, '+inf'), c.rate_m}
for i = 1, #out do out[i] = tostring(out[i]) end
out[16] = st[3] or ''
out[17] = redis.call('HGET', EV, 'pow') or '0'
out[18] = redis.call('HGET', EV, 'page') or ''
return out
