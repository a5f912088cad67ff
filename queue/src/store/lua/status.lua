-- status: a batch of N >= 1 status reads of one event, applied in order exactly as N calls.
-- ARGV[3i], ARGV[3i+1], ARGV[3i+2] = ticket, session digest, 1 to count the read as a heartbeat.
-- Reply: {-1} unknown event | {rate_m, aps, flags, opens, epoch, then per read: status, position,
-- expires_at, log seq (the departure log's sequence the position is exact at)}. One script call for the group: one round trip however many readers.
local c = load_cfg()
if not c then return {-1} end
local out = {c.rate_m, c.aps, flags(c), c.opens or -1, c.epoch}
-- The readers' queue scores are read once for the batch (ZMSCORE) rather than by one ZSCORE
-- each: in a script a redis.call costs more than the lookup it asks for. A read only ever takes
-- a place out of the queue (an idle one expires), so `gone` is all a later read of the same
-- session in this batch needs to know.
local sessions = {}
for i = 3, #ARGV, 3 do sessions[#sessions + 1] = ARGV[i + 1] end
local scores = redis.call('ZMSCORE', Q, unpack(sessions))
local gone = {}
for i = 3, #ARGV, 3 do
  local t, d = tonumber(ARGV[i]), ARGV[i + 1]
  local s = scores[i / 3]
  if gone[d] then s = false end
  local p = place(c, t, d, ARGV[i + 2] == '1', s or nil)
  if p[1] == EXPIRED and s and tonumber(s) % TBITS == t then gone[d] = true end
  local k = #out
  out[k + 1], out[k + 2], out[k + 3], out[k + 4] = p[1], p[2], p[3], log_seq(c)
end
return out
