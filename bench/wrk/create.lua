-- Registers new sessions, as every checkout does: ids WRK_RUN .. "_" .. i, the example catalog's Pro
-- monthly with its onboarding fee.
local run = os.getenv("WRK_RUN")
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i + 1
  local body = '{"id": "' .. run .. '_' .. i .. '", "mode": "subscription", "currency": "usd", ' ..
    '"customer": "cus_' .. i .. '", "line_items": [{"price": "price_pro_monthly"}, {"price": "price_setup"}]}'
  return wrk.format(nil, nil, nil, body)
end
