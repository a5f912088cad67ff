-- pulse: ARGV[3] = the log sequence the caller has seen. Reply (all strings):
-- {found, dseq, flags, opens | -1, rate_m, aps, gap, idle, epoch, p_end, p_len, entry...} with
-- entries oldest first. gap = 1 when the caller is too far behind (or ahead: the event was
-- recreated) to derive positions from the log, and must re-read them. p_end and p_len are the
-- pause record `beat` credits heartbeats with, so a reader can tell when a place expires.
local c = load_cfg()
if not c then return {'0'} end
local dseq = c.dseq
local since = tonumber(ARGV[3])
local out = {'1', tostring(dseq), tostring(flags(c)), tostring(c.opens or -1), tostring(c.rate_m),
  tostring(c.aps), '0', tostring(c.idle), string.format('%.0f', c.epoch), tostring(c.p_end),
  tostring(c.p_len)}
local n = dseq - since
if n < 0 or n > DLOG_MAX then
  out[7] = '1'
  return out
end
if n > 0 then
  local entries = redis.call('LRANGE', P .. 'dlog', 0, n - 1)
  for i = #entries, 1, -1 do
    out[#out + 1] = entries[i]
  end
end
return out
