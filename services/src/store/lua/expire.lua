-- ARGV: prefix, now, limit, due_by (a deadline bound, or '+inf' for every hold), status
-- (4 expired, 3 cancelled). Releases up to `limit` pending holds whose deadline is at most
-- due_by; replies their ids.
local ids = redis.call('ZRANGEBYSCORE', K_HOLDS, '-inf', ARGV[4], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  if tonumber(redis.call('HGET', rkey(id), 'st')) == 1 then
    release(id, tonumber(ARGV[5]))
  else
    redis.call('ZREM', K_HOLDS, id)
  end
end
return ids
