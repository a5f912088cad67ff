-- One poll of a consumer: the entries whose retry is due, then new entries.
-- KEYS[1] inbox stream, KEYS[2] retry schedule (sorted set: entry id scored by the time its
-- next attempt is due, ms), KEYS[3] attempts (hash: entry id -> failed attempts so far).
-- ARGV[1] group, ARGV[2] consumer, ARGV[3] now (ms), ARGV[4] most entries to return.
-- Returns a list of {entry id, attempts, field, value, ...}.
local out = {}
local function push(e)
  -- XCLAIM of an entry deleted meanwhile (acknowledged by another consumer) yields nothing or
  -- nil depending on the Redis version; skip it.
  if not e or not e[2] then return end
  local row = {e[1], redis.call('HGET', KEYS[3], e[1]) or '0'}
  for _, v in ipairs(e[2]) do row[#row + 1] = v end
  out[#out + 1] = row
end
local limit = tonumber(ARGV[4])
-- Due retries first. Removing an id from the schedule and claiming it happen together, so two
-- consumers polling at once never both take the same retry.
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[3], 'LIMIT', 0, limit)
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[2], id)
  local claimed = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id)
  for _, e in ipairs(claimed) do push(e) end
end
local room = limit - #out
if room > 0 then
  local r = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', room, 'STREAMS', KEYS[1], '>')
  if r then
    for _, e in ipairs(r[1][2]) do push(e) end
  end
end
return out
