-- Settings every row reads from the environment: WRK_AUTHORIZATION (a bearer token), WRK_DELAY_MS (a
-- pause before each request of a connection, to load at a set rate rather than flat out).
local token = os.getenv("WRK_AUTHORIZATION")
if token and token ~= "" then wrk.headers["Authorization"] = "Bearer " .. token end
local pause = tonumber(os.getenv("WRK_DELAY_MS") or "")
if pause and pause > 0 then
  delay = function() return pause end
end
