// Refresh the committed Leaflet build under service/static/vendor/leaflet/ from node_modules.
// usage (repo root): npm ci && npm run vendor && rm -rf node_modules
// The /map page then loads only these local files: no CDN at run time, and neither CI nor
// `make setup` needs npm.
const fs = require("fs");
const path = require("path");

const root = path.resolve(__dirname, "..", "..", "..");
const src = path.join(root, "node_modules", "leaflet");
const dst = path.join(__dirname, "leaflet");
if (!fs.existsSync(path.join(src, "dist", "leaflet.js"))) {
  console.error("node_modules/leaflet is missing: run `npm ci` at the repo root first");
  process.exit(1);
}
const version = JSON.parse(fs.readFileSync(path.join(src, "package.json"), "utf8")).version;
fs.rmSync(dst, { recursive: true, force: true });
fs.mkdirSync(path.join(dst, "images"), { recursive: true });
for (const f of ["leaflet.js", "leaflet.css"]) {
  fs.copyFileSync(path.join(src, "dist", f), path.join(dst, f));
}
for (const f of fs.readdirSync(path.join(src, "dist", "images"))) {
  fs.copyFileSync(path.join(src, "dist", "images", f), path.join(dst, "images", f));
}
fs.copyFileSync(path.join(src, "LICENSE"), path.join(dst, "LICENSE"));
fs.writeFileSync(path.join(dst, "VERSION"), version + "\n");
console.log(`leaflet ${version} -> ${path.relative(root, dst)}`);
