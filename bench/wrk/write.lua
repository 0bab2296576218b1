-- The bare write baseline: POST WRK_PREFIX .. i with a session-sized body.
local prefix = os.getenv("WRK_PREFIX")
local run = os.getenv("WRK_RUN")
local i = 0
wrk.headers["Content-Type"] = "application/json"
local body = '{"mode": "subscription", "currency": "usd", "line_items": [{"price": "price_pro_monthly"}, ' ..
  '{"price": "price_setup"}]}'
request = function()
  i = i + 1
  return wrk.format("POST", prefix .. run .. "_" .. i, nil, body)
end
