// Sends a buyer's journey through @segment/analytics-node, configured with nothing but our host
// and a write key: node send_journey.mjs <host> <write key> <user id> <start ISO time>
import { Analytics } from "@segment/analytics-node";

const [host, writeKey, userId, startIso] = process.argv.slice(2);
const start = new Date(startIso).getTime();
const at = (minutes) => new Date(start + minutes * 60_000);
const failures = [];
const analytics = new Analytics({ writeKey, host, flushInterval: 200 });
analytics.on("error", (err) => failures.push(err));

analytics.identify({
  userId,
  traits: { email: "nod@acme-labs.com", title: "VP Marketing", industry: "software", employees: 400, region: "emea" },
  timestamp: at(0),
});
analytics.page({ userId, properties: { url: "https://www.example.com/pricing" }, timestamp: at(7) });
analytics.page({ userId, properties: { url: "https://www.example.com/pricing?x=1" }, timestamp: at(14) });
analytics.page({ userId, properties: { url: "https://www.example.com/case-studies/a" }, timestamp: at(21) });
analytics.track({ userId, event: "Demo Requested", properties: { form_id: "demo" }, timestamp: at(28) });
await analytics.closeAndFlush({ timeout: 30_000 });
if (failures.length) {
  console.error("analytics-node failed:", failures.map((f) => f.reason || f.code || String(f)).join("; "));
  process.exit(1);
}
console.log("sent");
