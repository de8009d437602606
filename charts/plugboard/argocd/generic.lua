-- Argo CD health for plugboard.dev Connector, ClusterConnector and Tenant: Healthy when
-- Ready=True for the current generation, Degraded when Stalled, else Progressing.
hs = {status = "Progressing", message = "Waiting for plugboard"}
if obj.status == nil or obj.status.conditions == nil then return hs end
local current = obj.status.observedGeneration == obj.metadata.generation
for _, c in ipairs(obj.status.conditions) do
  if c.type == "Stalled" and c.status == "True" then
    return {status = "Degraded", message = c.message}
  end
  if c.type == "Ready" and c.status == "True" and current then
    return {status = "Healthy", message = c.message}
  end
  if c.type == "Ready" and c.status == "False" then hs.message = c.message end
end
return hs
