-- Toggles over many sessions, a different one each time: WRK_PREFIX .. i .. "/upsell" for i = 0 ..
-- WRK_SPREAD - 1 (from request WRK_START on), each visit flipping the selection, so every request
-- changes its session.
local prefix = os.getenv("WRK_PREFIX")
local spread = tonumber(os.getenv("WRK_SPREAD"))
local i = tonumber(os.getenv("WRK_START") or "0")
wrk.headers["Content-Type"] = "application/json"
request = function()
  local session = i % spread
  local selected = (math.floor(i / spread) % 2 == 0) and "true" or "false"
  i = i + 1
  return wrk.format("POST", prefix .. session .. "/upsell", nil, '{"selected": ' .. selected .. '}')
end
