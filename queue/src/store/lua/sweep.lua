-- sweep: ARGV[3] = how many heartbeat buckets to scan. Removes waiting users idle for
-- idle_timeout_seconds. Reply: {expired, 1 when the pass reached the newest ticket | 0} or {-1}.
--
-- 'sweep_floor' is the oldest bucket that can still hold anyone (buckets below it are empty and,
-- being below the ticket counter, stay empty); 'sweep_pos' is where the last call stopped, so
-- successive calls walk the whole queue in bounded steps.
local c = load_cfg()
if not c then return {-1} end
local st = redis.call('HMGET', EV, 'sweep_floor', 'sweep_pos')
local floor, pos = tonumber(st[1]) or 0, tonumber(st[2]) or 0
local last = math.floor((tonumber(redis.call('GET', SEQ)) or 0) / BUCKET)
if pos < floor then pos = floor end
local budget, expired, done = tonumber(ARGV[3]), 0, 0
while budget > 0 do
  local key = P .. 'h:' .. pos
  local h = redis.call('HGETALL', key)
  -- Oldest ticket first, so the departure log reads the same as the in-memory store's.
  local stale = {}
  for i = 1, #h, 2 do
    if NOW_S - tonumber(h[i + 1]) >= c.idle then
      stale[#stale + 1] = tonumber(h[i])
    end
  end
  table.sort(stale)
  for _, slot in ipairs(stale) do
    local t = pos * BUCKET + slot
    local rank = redis.call('ZRANK', Q, t)
    if rank then
      drop_waiting(t, rank)
    else
      redis.call('HDEL', key, slot)
    end
    expired = expired + 1
  end
  if pos == floor and pos < last and redis.call('HLEN', key) == 0 then
    floor = pos + 1
  end
  budget = budget - 1
  if pos >= last then
    pos, done = floor, 1
    break
  end
  pos = pos + 1
end
redis.call('HSET', EV, 'sweep_floor', floor, 'sweep_pos', pos)
return {expired, done}
