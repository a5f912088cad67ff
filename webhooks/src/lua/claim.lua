-- Takes over entries that another consumer read but never finished (it crashed, or hangs).
-- KEYS[1] inbox stream, KEYS[2] retry schedule, KEYS[3] attempts.
-- ARGV[1] group, ARGV[2] consumer, ARGV[3] min idle (ms), ARGV[4] cursor, ARGV[5] count,
-- ARGV[6] idle (ms) after which a consumer with nothing pending is removed from the group.
-- Returns {next cursor, {entry id, attempts, field, value, ...}, ...}.
local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], 'COUNT', ARGV[5])
local out = {r[1]}
for _, e in ipairs(r[2]) do
  -- An entry waiting in the retry schedule is pending too, and idles through its backoff; it
  -- is not abandoned, so it is left to the schedule (whoever takes it then claims it again).
  if e and e[2] and not redis.call('ZSCORE', KEYS[2], e[1]) then
    local row = {e[1], redis.call('HGET', KEYS[3], e[1]) or '0'}
    for _, v in ipairs(e[2]) do row[#row + 1] = v end
    out[#out + 1] = row
  end
end
-- Once a scan has wrapped, forget consumers of replicas that are gone: consumer names are per
-- process, so without this every restart would leave one behind. Only those with nothing
-- pending (their entries were just claimed) and long silent (a live consumer polls every
-- fraction of a second) are removed; removing a live one would be harmless anyway, its next
-- read recreates it.
if r[1] == '0-0' then
  for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
    local f = {}
    for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
    if f.name ~= ARGV[2] and tonumber(f.pending) == 0 and tonumber(f.idle) > tonumber(ARGV[6]) then
      redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f.name)
    end
  end
end
return out
