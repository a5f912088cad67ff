-- places: ARGV[3] = 1 to count as a heartbeat, ARGV[4..] = (ticket, session digest) pairs.
-- Reply: {found, rate_m, aps, flags, opens | -1, dseq, epoch, then status, position, expires_at for
-- each ticket}, where dseq is the departure log's sequence that the positions are exact at
-- (lazy expiries included). One call stands in for many status calls (the WebSocket fan-out's
-- resync and heartbeat of its open connections).
local c = load_cfg()
if not c then return {-1} end
local hb = ARGV[3] == '1'
local out = {1, c.rate_m, c.aps, flags(c), c.opens or -1, 0, c.epoch}
for i = 4, #ARGV, 2 do
  local p = place(c, tonumber(ARGV[i]), ARGV[i + 1], hb)
  out[#out + 1] = p[1]
  out[#out + 1] = p[2]
  out[#out + 1] = p[3]
end
out[6] = tonumber(redis.call('HGET', EV, 'dseq')) or 0
return out
