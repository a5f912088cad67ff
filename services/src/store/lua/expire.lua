-- ARGV: prefix, now, limit. Expires holds whose deadline is due; replies their ids.
local ids = redis.call('ZRANGEBYSCORE', K_HOLDS, '-inf', NOW, 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  if tonumber(redis.call('HGET', rkey(id), 'st')) == 1 then
    release(id, 4)
  else
    redis.call('ZREM', K_HOLDS, id)
  end
end
return ids
