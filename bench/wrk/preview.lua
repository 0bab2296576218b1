-- Upgrade previews over many subscriptions: WRK_PREFIX .. i .. "/change-preview" for i = 0 ..
-- WRK_SPREAD - 1 (from request WRK_START on), to the Team plan.
local prefix = os.getenv("WRK_PREFIX")
local spread = tonumber(os.getenv("WRK_SPREAD"))
local i = tonumber(os.getenv("WRK_START") or "0")
wrk.headers["Content-Type"] = "application/json"
request = function()
  local path = prefix .. (i % spread) .. "/change-preview"
  i = i + 1
  return wrk.format("POST", path, nil, '{"price": "price_team_monthly"}')
end
