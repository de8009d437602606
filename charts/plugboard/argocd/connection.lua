-- Argo CD health check for plugboard.dev/v1alpha1 Connection (Lua 5.1 subset, as Argo CD runs it).
-- Progressing until the operator has observed the current generation; then Suspended when the
-- Connection is disconnected on request or its Tenant is suspended, Degraded when Stalled=True (only an edit fixes it),
-- Healthy when Ready=True, Progressing otherwise (waiting for consent, a referenced object, a retry).
local hs = {status = "Progressing", message = "Waiting for plugboard to reconcile"}
if obj.status == nil then
  return hs
end
local generation = obj.metadata.generation
if generation ~= nil and obj.status.observedGeneration ~= generation then
  hs.message = "Waiting for plugboard to observe generation " .. tostring(generation)
  return hs
end
local ready = nil
local stalled = nil
for _, c in ipairs(obj.status.conditions or {}) do
  if c.type == "Ready" then ready = c end
  if c.type == "Stalled" then stalled = c end
end
if obj.status.state == "Disconnected" then
  hs.status = "Suspended"
  hs.message = "Disconnected on request (spec.disconnected)"
  return hs
end
if obj.status.state == "Suspended" then
  hs.status = "Suspended"
  hs.message = (ready and ready.message) or "Its Tenant is suspended"
  return hs
end
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = stalled.message or stalled.reason or "Stalled"
  return hs
end
if ready ~= nil then
  if ready.status == "True" then hs.status = "Healthy" end
  if ready.message ~= nil and ready.message ~= "" then hs.message = ready.message end
end
return hs
