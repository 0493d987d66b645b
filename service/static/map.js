/* gridgeo /map page: the levels with toggles, properties + responsible person on click, a patrol
 * route overlay. Plain ES2017 on the vendored Leaflet (no build step, no CDN, no basemap unless one
 * is configured). */
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("map-config").textContent);
  var root = cfg.root || "";
  var statusEl = document.getElementById("status");
  var LEADER_KEYS = ["leader", "leader_phone", "worker", "worker_phone", "point_leader", "point_leader_phone"];
  var HIER = ["township", "block", "village", "grid", "point", "exclusive"];

  function setStatus(text, isError) {
    statusEl.textContent = text;
    statusEl.className = isError ? "error" : "muted";
  }

  function esc(v) {
    return String(v).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  /* Add coords=gcj02|bd09 when the configured tiles are drawn in those systems. */
  function withCoords(url) {
    if (!cfg.coords) return url;
    return url + (url.indexOf("?") >= 0 ? "&" : "?") + "coords=" + encodeURIComponent(cfg.coords);
  }

  function fetchJSON(url, options) {
    var opts = options || {};
    opts.headers = Object.assign({ Accept: "application/geo+json, application/json" }, opts.headers || {});
    return fetch(url, opts).then(function (resp) {
      return resp.text().then(function (text) {
        var body = null;
        try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
        if (!resp.ok) {
          var detail = body && (body.detail || body.title || body.description);
          var err = new Error(resp.status + " " + (detail || resp.statusText));
          err.status = resp.status;
          throw err;
        }
        return body;
      });
    });
  }

  function nextLink(fc) {
    var links = (fc && fc.links) || [];
    for (var i = 0; i < links.length; i++) {
      if (links[i].rel === "next" && links[i].href) return links[i].href;
    }
    return null;
  }

  /* Make an absolute next href usable from this page (same origin path, even behind a proxy). */
  function sameOrigin(href) {
    try {
      var u = new URL(href, window.location.href);
      return u.pathname + u.search;
    } catch (e) { return href; }
  }

  // ---------------------------------------------------------------- the map
  var map = L.map("map", { preferCanvas: true, zoomSnap: 0.25, attributionControl: true });
  map.attributionControl.setPrefix(false);
  map.setView([30, 115], 5);
  if (cfg.tileUrl) {
    L.tileLayer(cfg.tileUrl, { attribution: cfg.tileAttribution || "", maxZoom: 19 }).addTo(map);
  }
  L.control.scale({ imperial: false }).addTo(map);

  var note = document.getElementById("coords-note");
  var noteBase = "坐标 coordinates: " + (cfg.coords ? cfg.coords.toUpperCase() + " (coords=" + cfg.coords + ")" :
    "WGS84 / CRS84 lon,lat") + (cfg.tileUrl ? "; basemap: configured tiles" :
    "; no basemap (offline: set MAP_TILE_URL, and MAP_COORDS=gcj02|bd09 for Chinese tiles)");
  note.textContent = noteBase;
  map.on("mousemove", function (e) {
    note.textContent = noteBase + " · " + e.latlng.lng.toFixed(6) + ", " + e.latlng.lat.toFixed(6);
  });

  // ---------------------------------------------------------------- popups
  function titleOf(props) {
    return props.name || props.code || props.id || "";
  }

  function leaderHtml(props) {
    var rows = [];
    LEADER_KEYS.forEach(function (k) {
      if (props[k] === undefined || props[k] === null || props[k] === "") return;
      var v = esc(props[k]);
      if (/phone/.test(k)) v = '<a href="tel:' + v + '">' + v + "</a>";
      rows.push("<div>" + esc(k) + ": " + v + "</div>");
    });
    Object.keys(props).forEach(function (k) {
      if (LEADER_KEYS.indexOf(k) < 0 && /leader|worker|负责/.test(k) && props[k] !== null && props[k] !== "") {
        rows.push("<div>" + esc(k) + ": " + esc(props[k]) + "</div>");
      }
    });
    if (!rows.length) return '<div class="leader muted">负责人 responsible person: not recorded</div>';
    return '<div class="leader"><b>负责人 responsible person</b>' + rows.join("") + "</div>";
  }

  function propsTable(props) {
    var rows = Object.keys(props).map(function (k) {
      var v = props[k];
      if (v !== null && typeof v === "object") v = JSON.stringify(v);
      return "<tr><th>" + esc(k) + "</th><td>" + esc(v === null ? "" : v) + "</td></tr>";
    });
    return '<table class="props">' + rows.join("") + "</table>";
  }

  function hierarchyHtml(body) {
    if (!body) return "";
    var res = body;
    if (res.features && res.features.length) res = res.features[0].properties || {};
    else if (res.properties) res = res.properties;
    else if (res.results && res.results.length) res = res.results[0];
    var rows = [];
    HIER.forEach(function (level) {
      var v = res[level] || res[level + "s"];
      if (!v) return;
      if (typeof v !== "object") { rows.push("<div>" + esc(level) + ": " + esc(v) + "</div>"); return; }
      var who = [v.leader, v.leader_phone].filter(Boolean).map(esc).join(" ");
      rows.push("<div>" + esc(level) + ": " + esc(v.name || v.code || v.id || "") +
        (who ? " · " + who : "") + "</div>");
    });
    return rows.length ? '<div class="hier"><b>所属 located in</b>' + rows.join("") + "</div>" : "";
  }

  var selected = null;
  function highlight(lyr, group) {
    if (selected && selected.group) selected.group.resetStyle(selected.layer);
    selected = null;
    if (!lyr.setStyle || !group) return;
    lyr.setStyle({ weight: 4, color: "#ffc400", fillOpacity: 0.3 });
    if (lyr.bringToFront) lyr.bringToFront();
    selected = { layer: lyr, group: group };
  }

  function onFeatureClick(layerName, standIn) {
    return function (e) {
      if (!e.latlng && e.target.getBounds) e.latlng = e.target.getBounds().getCenter();
      if (!e.latlng && e.target.getLatLng) e.latlng = e.target.getLatLng();
      var props = (e.target.feature && e.target.feature.properties) || {};
      highlight(e.target, layers[layerName] && layers[layerName].group);
      var html = '<div class="popup-title">' + esc(layerName) + " · " + esc(titleOf(props)) + "</div>" +
        leaderHtml(props) + propsTable(props) + '<div class="hier-slot"></div>';
      var popup = L.popup({ maxWidth: 360, maxHeight: 380 }).setLatLng(e.latlng).setContent(html).openOn(map);
      var mine = e.target;
      popup.on("remove", function () { if (selected && selected.layer === mine) highlight({}, null); });
      if (layerName === "grids" || standIn === "grids") {
        var code = props.code || props.id;
        if (code) document.getElementById("route-grid").value = code;
      }
      // the whole chain with its leaders, where the service has /locate
      var url = withCoords(root + "/locate?lon=" + e.latlng.lng.toFixed(7) + "&lat=" + e.latlng.lat.toFixed(7));
      fetchJSON(url).then(function (body) {
        var extra = hierarchyHtml(body);
        if (extra && popup.isOpen()) popup.setContent(html.replace('<div class="hier-slot"></div>', extra));
      }).catch(function () { /* no /locate: the feature's own properties are enough */ });
    };
  }

  // ---------------------------------------------------------------- layers
  var layers = {};   // name -> state
  var layerList = document.getElementById("layers");

  function styleFor(name, standIn) {
    var base = cfg.levels[name] || (standIn && cfg.levels[standIn]) || cfg.inputLayers[name] || {};
    var s = Object.assign({}, cfg.otherStyle, base);
    if (standIn && cfg.levels[standIn]) s = Object.assign({}, cfg.otherStyle, cfg.levels[standIn]);
    return s;
  }

  function makeLayer(coll, standIn) {
    var name = coll.id;
    var meta = cfg.levels[name] || cfg.inputLayers[name] || {};
    var s = styleFor(name, standIn);
    var state = {
      name: name, standIn: standIn, style: s, seen: {}, count: 0, matched: coll.itemCount,
      lazy: !!meta.lazy, generation: 0, done: false,
      label: (meta.label || name) + (standIn ? " (as " + standIn + ")" : ""),
    };
    state.group = L.geoJSON(null, {
      style: function (f) {
        if (f && f.geometry && /Point/.test(f.geometry.type)) {
          return { color: s.color, weight: 1, fillColor: s.color, fillOpacity: 0.8, opacity: 1 };
        }
        return { color: s.color, weight: s.weight, fillColor: s.color, fillOpacity: s.fillOpacity,
          opacity: 1, dashArray: s.dashArray || null };
      },
      pointToLayer: function (f, latlng) {
        return L.circleMarker(latlng, { radius: 4, color: s.color, weight: 1, fillColor: s.color, fillOpacity: 0.8 });
      },
      onEachFeature: function (f, lyr) { lyr.on("click", onFeatureClick(name, standIn)); },
    });
    state.visible = !meta.off;
    layers[name] = state;

    var li = document.createElement("li");
    var id = "layer-" + name;
    li.innerHTML = '<input type="checkbox" id="' + esc(id) + '"' + (state.visible ? " checked" : "") + ">" +
      '<span class="swatch" style="border-color:' + esc(s.color) + '"></span>' +
      '<label for="' + esc(id) + '">' + esc(state.label) + "</label>" + '<span class="count"></span>';
    state.countEl = li.querySelector(".count");
    li.querySelector("input").addEventListener("change", function (ev) {
      state.visible = ev.target.checked;
      if (state.visible) { state.group.addTo(map); load(state); } else { map.removeLayer(state.group); }
      order();
    });
    layerList.appendChild(li);
    return state;
  }

  function showCount(state, extra) {
    var text = state.count + (state.matched !== undefined && state.matched !== null ? " / " + state.matched : "");
    state.countEl.textContent = extra ? extra : text;
  }

  function add(state, fc) {
    var fresh = (fc.features || []).filter(function (f) {
      var key = f.id !== undefined ? f.id : JSON.stringify(f.properties);
      if (state.seen[key]) return false;
      state.seen[key] = true;
      return true;
    });
    state.group.addData({ type: "FeatureCollection", features: fresh });
    state.count += fresh.length;
    if (fc.numberMatched !== undefined && !state.lazy) state.matched = fc.numberMatched;
  }

  /* Load every page of a layer, following next links. */
  function loadAll(state) {
    if (state.done || state.loading) return state.loading || Promise.resolve();
    var url = withCoords(root + "/collections/" + encodeURIComponent(state.name) + "/items?limit=" + cfg.pageLimit);
    function step(u) {
      return fetchJSON(u).then(function (fc) {
        if (state.count === 0 && fc.numberMatched > cfg.eagerMax) {
          state.lazy = true;   // too many to hold at once: load by view instead
          state.loading = null;
          return loadView(state);
        }
        add(state, fc);
        showCount(state);
        var next = nextLink(fc);
        if (next) return step(sameOrigin(next));
        state.done = true;
      });
    }
    state.loading = step(url).catch(function (err) {
      state.countEl.textContent = "error";
      setStatus(state.name + ": " + err.message, true);
    }).then(function () { state.loading = null; });
    return state.loading;
  }

  /* Load the features in view (points, buildings: thousands): all of them when the view holds at
   * most eagerMax, else ask to zoom in. A newer view cancels an older load. */
  function loadView(state) {
    if (!state.visible) return Promise.resolve();
    var gen = ++state.generation;
    var b = map.getBounds();
    var bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (v) { return v.toFixed(6); }).join(",");
    function step(u, first) {
      if (gen !== state.generation) return null;   // the view moved on: stop this one
      return fetchJSON(u).then(function (fc) {
        if (gen !== state.generation) return null;
        if (first && fc.numberMatched > cfg.viewMax) {
          showCount(state, (state.count ? state.count + " shown; " : "") + "zoom in (" + fc.numberMatched + " in view)");
          return null;
        }
        add(state, fc);
        showCount(state, state.count + " loaded (by view)…");
        var next = nextLink(fc);
        if (next) return step(sameOrigin(next), false);
        showCount(state, state.count + " loaded (by view)");
        return null;
      });
    }
    return step(withCoords(root + "/collections/" + encodeURIComponent(state.name) +
      "/items?limit=" + cfg.pageLimit + "&bbox=" + bbox), true).catch(function (err) {
      setStatus(state.name + ": " + err.message, true);
    });
  }

  function load(state) {
    if (!state.visible) return Promise.resolve();
    return state.lazy ? loadView(state) : loadAll(state);
  }

  /* Coarse levels at the bottom, fine levels on top (a click hits the finest feature). */
  var DRAW_ORDER = ["areas", "townships", "blocks", "villages", "villager_groups", "grids", "exclusive", "points",
                    "micro_grids", "lanes"];
  function order() {
    DRAW_ORDER.forEach(function (n) { if (layers[n] && layers[n].visible) layers[n].group.bringToFront(); });
    ["roads", "water", "pois", "buildings"].forEach(function (n) {
      if (layers[n] && layers[n].visible) layers[n].group.bringToFront();
    });
  }

  map.on("moveend", function () {
    Object.keys(layers).forEach(function (n) { if (layers[n].lazy && layers[n].visible) loadView(layers[n]); });
  });

  function start() {
    setStatus("loading collections…");
    return fetchJSON(root + "/collections").then(function (doc) {
      var colls = (doc && doc.collections) || [];
      var ids = colls.map(function (c) { return c.id; });
      var known = Object.keys(cfg.levels);
      var sorted = [];
      DRAW_ORDER.concat(Object.keys(cfg.inputLayers)).forEach(function (n) {
        if (ids.indexOf(n) >= 0 && sorted.indexOf(n) < 0) sorted.push(n);
      });
      ids.forEach(function (n) { if (sorted.indexOf(n) < 0) sorted.push(n); });
      layerList.innerHTML = "";
      var bounds = null;
      var byId = {};
      colls.forEach(function (c) { byId[c.id] = c; });
      sorted.forEach(function (n) {
        var c = byId[n];
        var standIn = null;
        if (n === "villager_groups" && ids.indexOf("grids") < 0) standIn = "grids";
        var state = makeLayer(c, standIn);
        if (state.visible) state.group.addTo(map);
        var bb = c.extent && c.extent.spatial && c.extent.spatial.bbox && c.extent.spatial.bbox[0];
        if (bb && bb.length >= 4 && (known.indexOf(n) >= 0 || standIn || n === "villages" || n === "townships")) {
          var lb = L.latLngBounds([bb[1], bb[0]], [bb[bb.length === 6 ? 4 : 3], bb[bb.length === 6 ? 3 : 2]]);
          bounds = bounds ? bounds.extend(lb) : lb;
        }
      });
      if (bounds && bounds.isValid()) map.fitBounds(bounds, { padding: [10, 10] });
      if (!sorted.length) setStatus("no collections to show");
      var loads = sorted.map(function (n) { return load(layers[n]); });
      return Promise.all(loads).then(function () {
        order();
        if (!bounds) {
          var all = L.featureGroup(sorted.map(function (n) { return layers[n].group; }));
          var b2 = all.getBounds();
          if (b2.isValid()) map.fitBounds(b2, { padding: [10, 10] });
        }
        var total = sorted.reduce(function (a, n) { return a + layers[n].count; }, 0);
        if (statusEl.className !== "error") setStatus(total + " features loaded");
        document.body.setAttribute("data-loaded", String(total));
      });
    }).catch(function (err) { setStatus("collections: " + err.message, true); });
  }

  // ---------------------------------------------------------------- patrol route overlay
  var routeLayer = null;
  var PRIORITY = { red: "#d50000", orange: "#ff6d00", yellow: "#ffd600" };  // 红 / 橙 / 黄 households
  var routeStatus = document.getElementById("route-status");
  var dateInput = document.getElementById("route-date");
  if (!dateInput.value) {
    var d = new Date();
    dateInput.value = d.getFullYear() + "-" + String(d.getMonth() + 1).padStart(2, "0") + "-" +
      String(d.getDate()).padStart(2, "0");
  }

  function summary(fc) {
    var p = Object.assign({}, fc.properties || {});
    (fc.features || []).forEach(function (f) {
      var g = f.geometry && f.geometry.type;
      if (g === "LineString" || g === "MultiLineString") Object.assign(p, f.properties || {});
    });
    var parts = [];
    var has = function (k) { return p[k] !== undefined && p[k] !== null; };
    if (has("distance_m")) {
      parts.push(p.distance_m >= 1000 ? (p.distance_m / 1000).toFixed(1) + " km" : Math.round(p.distance_m) + " m");
    }
    if (has("duration_min")) {
      var m = Math.round(p.duration_min);
      parts.push(m >= 60 ? Math.floor(m / 60) + " h " + (m % 60) + " min walk" : m + " min walk");
    }
    if (has("visits_made") && has("visits_due")) parts.push(p.visits_made + " of " + p.visits_due + " due visits");
    else if (has("visits_made")) parts.push(p.visits_made + " visits");
    if (has("red_met") && has("red_due") && p.red_due) parts.push(p.red_met + " of " + p.red_due + " red households");
    return parts.join(", ");
  }

  function drawRoute(fc) {
    if (routeLayer) map.removeLayer(routeLayer);
    var st = cfg.route;
    var n = 0;
    routeLayer = L.geoJSON(fc, {
      style: function () { return { color: st.color, weight: st.weight, opacity: 0.9 }; },
      pointToLayer: function (f, latlng) {
        n += 1;
        var p = f.properties || {};
        var label = p.kind === "station" ? "起 start" :
          (p.seq !== undefined ? p.seq : (p.order !== undefined ? p.order : (p.stop !== undefined ? p.stop : n)));
        var fill = PRIORITY[p.priority] || st.stopColor;
        return L.circleMarker(latlng, { radius: p.kind === "station" ? 8 : 6, color: st.color, weight: 2,
          fillColor: fill, fillOpacity: 1 })
          .bindTooltip(String(label), { permanent: true, direction: "right", className: "stop-label" });
      },
      onEachFeature: function (f, lyr) {
        lyr.bindPopup('<div class="popup-title">route</div>' + propsTable(f.properties || {}), { maxWidth: 360 });
      },
    }).addTo(map);
    var b = routeLayer.getBounds();
    if (b.isValid()) map.fitBounds(b, { padding: [30, 30], maxZoom: 17 });
    return n;
  }

  document.getElementById("route-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var grid = document.getElementById("route-grid").value.trim();
    var date = dateInput.value;
    if (!grid || !date) return;
    routeStatus.className = "muted";
    routeStatus.textContent = "loading route…";
    var url = withCoords(root + "/patrol/" + encodeURIComponent(grid) + "?date=" + encodeURIComponent(date));
    fetchJSON(url).then(function (fc) {
      var stops = drawRoute(fc) - (fc.features || []).filter(function (f) {
        return f.properties && f.properties.kind === "station";
      }).length;
      var s = summary(fc);
      routeStatus.textContent = grid + " " + date + ": " + stops + " stops" + (s ? "; " + s : "");
    }).catch(function (err) {
      routeStatus.className = "error";
      routeStatus.textContent = "route: " + err.message;
    });
  });
  document.getElementById("route-clear").addEventListener("click", function () {
    if (routeLayer) map.removeLayer(routeLayer);
    routeLayer = null;
    routeStatus.textContent = "";
  });

  window.gridgeoMap = { map: map, layers: layers, drawRoute: drawRoute };
  // /map?grid=CODE&date=YYYY-MM-DD opens with that day's route drawn (a link from a patrol list)
  var query = new URLSearchParams(window.location.search);
  if (query.get("grid")) document.getElementById("route-grid").value = query.get("grid");
  if (query.get("date")) dateInput.value = query.get("date");
  start().then(function () {
    // /map?select=CODE opens that feature's popup (finest level first), as a click on it would
    var sel = query.get("select");
    if (sel) {
      var names = Object.keys(layers).sort(function (a, b) { return DRAW_ORDER.indexOf(b) - DRAW_ORDER.indexOf(a); });
      var hit = null;
      names.some(function (n) {
        layers[n].group.eachLayer(function (lyr) {
          var p = (lyr.feature && lyr.feature.properties) || {};
          if (!hit && (p.code === sel || p.id === sel || (lyr.feature && String(lyr.feature.id) === sel))) hit = lyr;
        });
        return !!hit;
      });
      if (hit) {
        if (hit.getBounds) map.fitBounds(hit.getBounds(), { maxZoom: 16, padding: [40, 40] });
        hit.fire("click");
      } else {
        setStatus("no feature " + sel, true);
      }
    }
    if (query.get("grid")) {
      document.getElementById("route-form").dispatchEvent(new Event("submit", { cancelable: true }));
    }
  });
})();
