-- Creates the consumer group (and the stream) if missing. KEYS[1] inbox stream, ARGV[1] group.
-- From id 0, so entries appended before the group existed are delivered too. pcall because
-- BUSYGROUP (another replica created it first) is the normal case, not an error.
local r = redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')
if type(r) == 'table' and r.err and not string.find(r.err, 'BUSYGROUP') then
  return redis.error_reply(r.err)
end
return 1
