-- status: ARGV[3] = ticket, ARGV[4] = 1 to count the call as a heartbeat.
-- Reply: {0 | -1 unknown event, ticket, place...}.
local c = load_cfg()
if not c then return {-1} end
local t = tonumber(ARGV[3])
return reply(c, 0, t, place(c, t, ARGV[4] == '1'))
