-- Shared by the scripts that copy an entry from one stream to another (prepended to each).

-- A stream entry's fields (a flat name, value list) as a flat list for XADD, without the
-- names that are keys of `drop`: the envelope, without the bookkeeping of where it was.
local function fields_without(fields, drop)
  local copy = {}
  for i = 1, #fields, 2 do
    if not drop[fields[i]] then
      copy[#copy + 1] = fields[i]
      copy[#copy + 1] = fields[i + 1]
    end
  end
  return copy
end
