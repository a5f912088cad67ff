-- places: ARGV[3] = 1 to count as a heartbeat, ARGV[4..] = (ticket, session digest) pairs.
-- Reply: {found, rate_m, aps, flags, opens | -1, dseq, epoch, then status, position, expires_at,
-- log seq for each ticket}: dseq is the departure log's sequence after the call, and a ticket's
-- log seq the one its position is exact at (a lazy expiry read later in the call moves those
-- read before it, and is logged after them). One call stands in for many status calls (the WebSocket fan-out's
-- resync and heartbeat of its open connections).
local c = load_cfg()
if not c then return {-1} end
local hb = ARGV[3] == '1'
local out = {1, c.rate_m, c.aps, flags(c), c.opens or -1, 0, c.epoch}
for i = 4, #ARGV, 2 do
  local p = place(c, tonumber(ARGV[i]), ARGV[i + 1], hb)
  local k = #out
  out[k + 1], out[k + 2], out[k + 3], out[k + 4] = p[1], p[2], p[3], log_seq(c)
end
out[6] = log_seq(c)
return out
