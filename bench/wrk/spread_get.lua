-- GET of many resources in turn: WRK_PREFIX .. i for i = 0 .. WRK_SPREAD - 1 (more than the service keeps
-- in memory, so every GET reads the database), from request WRK_START on.
local prefix = os.getenv("WRK_PREFIX")
local spread = tonumber(os.getenv("WRK_SPREAD"))
local i = tonumber(os.getenv("WRK_START") or "0")
request = function()
  local path = prefix .. (i % spread)
  i = i + 1
  return wrk.format("GET", path)
end
