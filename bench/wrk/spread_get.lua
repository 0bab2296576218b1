-- GET of many resources in turn: WRK_PREFIX .. i for i = 0 .. WRK_SPREAD - 1 (more than the service keeps
-- in memory, so every GET reads the database).
local prefix = os.getenv("WRK_PREFIX")
local spread = tonumber(os.getenv("WRK_SPREAD"))
local i = 0
request = function()
  local path = prefix .. (i % spread)
  i = i + 1
  return wrk.format("GET", path)
end
