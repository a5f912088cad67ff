-- status: a batch of N >= 1 status reads of one event, applied in order exactly as N calls.
-- ARGV[3i], ARGV[3i+1], ARGV[3i+2] = ticket, session digest, 1 to count the read as a heartbeat.
-- Reply: {-1} unknown event | {rate_m, aps, flags, opens, epoch, then per read: status, position,
-- expires_at}. One script call for the group: one round trip however many readers.
local c = load_cfg()
if not c then return {-1} end
local out = {c.rate_m, c.aps, flags(c), c.opens or -1, c.epoch}
for i = 3, #ARGV, 3 do
  local p = place(c, tonumber(ARGV[i]), ARGV[i + 1], ARGV[i + 2] == '1')
  local k = #out
  out[k + 1], out[k + 2], out[k + 3] = p[1], p[2], p[3]
end
return out
