// Castellan console: live updates. The only script of the console, served by the binary
// (CSP: script-src 'self'; connect-src 'self'). It opens /console/events and writes what the
// server sends into the page's marked elements, as text only (textContent, never HTML), so a
// value from the fleet cannot become markup here either. Without it the pages work as before
// (a reload shows the same).
"use strict";
(function () {
  var status = document.getElementById("live");
  if (!status || !window.EventSource) { return; }
  var esc = window.CSS && CSS.escape ? CSS.escape : function (s) { return String(s).replace(/["\\]/g, "\\$&"); };
  var PHASES = ["pending", "offered", "downloading", "installing", "rebooting", "confirming", "updated", "failed"];

  function setText(el, text) { if (el && el.textContent !== String(text)) { el.textContent = String(text); } }
  function setState(el, state) { if (el) { setText(el, state); el.className = "state " + state; } }
  function within(root, sel) { return root ? root.querySelectorAll(sel) : []; }

  var params = [];
  var campaignEl = document.getElementById("campaign");
  if (campaignEl && campaignEl.dataset.campaign) { params.push("campaign=" + encodeURIComponent(campaignEl.dataset.campaign)); }
  var deviceEl = document.getElementById("device-state");
  if (deviceEl && deviceEl.dataset.device) { params.push("device=" + encodeURIComponent(deviceEl.dataset.device)); }
  var source = new EventSource("/console/events" + (params.length ? "?" + params.join("&") : ""));
  var updates = 0;

  function touched() {
    updates += 1;
    document.body.dataset.liveUpdates = String(updates);
  }

  source.onopen = function () { setText(status, "● live"); status.className = "live on"; };
  source.onerror = function () { setText(status, "○ reconnecting"); status.className = "live off"; };
  source.addEventListener("end", function () {
    source.close();
    setText(status, "○ paused (reload to resume)");
    status.className = "live off";
  });

  source.addEventListener("campaign", function (ev) {
    var p = JSON.parse(ev.data);
    var roots = document.querySelectorAll('[data-campaign="' + esc(p.campaign_id) + '"]');
    roots.forEach(function (root) {
      within(root, '[data-field="state"]').forEach(function (el) { setState(el, p.state); });
      within(root, '[data-field="campaign-reason"]').forEach(function (el) { setText(el, p.reason); });
      within(root, '[data-field="wave"]').forEach(function (el) { setText(el, p.wave); });
      within(root, '[data-field="failure_rate"]').forEach(function (el) { setText(el, p.failure_rate); });
      PHASES.forEach(function (ph, i) {
        within(root, '[data-count="' + ph + '"]').forEach(function (el) { setText(el, p.counts[i]); });
        p.waves.forEach(function (w, k) {
          within(root, '[data-wave-count="' + k + ":" + ph + '"]').forEach(function (el) { setText(el, w[i]); });
        });
      });
      within(root, 'polyline[data-series="updated"]').forEach(function (el) { el.setAttribute("points", p.updated_points); });
      within(root, 'polyline[data-series="failed"]').forEach(function (el) { el.setAttribute("points", p.failed_points); });
      p.devices.forEach(function (d) {
        var row = root.querySelector('tr[data-device="' + esc(d.device_id) + '"]');
        if (!row) { return; }
        setState(row.querySelector('[data-field="phase"]'), d.phase);
        setText(row.querySelector('[data-field="reason"]'), d.reason);
      });
    });
    touched();
  });

  source.addEventListener("alert", function (ev) {
    var a = JSON.parse(ev.data);
    var row = document.querySelector('tr[data-alert="' + esc(a.alert_id) + '"]');
    if (row) {
      setState(row.querySelector('[data-field="state"]'), a.state);
      if (a.state !== "open") {
        row.querySelectorAll('a[data-action="acknowledge"]').forEach(function (el) { el.remove(); });
      }
      if (a.state === "resolved") {
        row.querySelectorAll('a[data-action="resolve"]').forEach(function (el) { el.remove(); });
      }
    } else {
      var notice = document.getElementById("new-alerts");
      if (notice && document.getElementById("alerts")) { notice.hidden = false; }
    }
    touched();
  });

  source.addEventListener("fleet", function (ev) {
    var f = JSON.parse(ev.data);
    Object.keys(f.by_state).forEach(function (state) {
      var card = document.getElementById("state-" + state);
      if (card) { setText(card.querySelector(".n"), f.by_state[state]); }
    });
    touched();
  });

  source.addEventListener("device", function (ev) {
    var d = JSON.parse(ev.data);
    if (!deviceEl || deviceEl.dataset.device !== d.device_id) { return; }
    setState(document.getElementById("state"), d.state);
    setState(document.getElementById("attestation"), d.attestation);
    setText(document.getElementById("online"), d.connected ? "online" : "offline");
    touched();
  });
})();
