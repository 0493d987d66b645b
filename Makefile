# gridgeo — two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
# stamps: the runtime install (make run) and the dev extra on top (make test / check)
STAMP     = $(VENV)/.installed
DEV_STAMP = $(VENV)/.installed-dev
SAMPLE  = boundaries/sample_county.gpkg
OUT    ?= out
HOST   ?= 127.0.0.1
PORT   ?= 8000
# a grid of the built sample county to plan a week of patrols for
GRID   ?= 36990000100101
# Debian packages only the tests need, installed only when missing (running needs none): gdal-bin
# (ogrinfo's OAPIF driver reads the API like QGIS does), chromium (headless screenshots of the map),
# postgresql and postgresql-postgis (Debian's PostGIS for its current PostgreSQL: the store tests start a
# throwaway cluster with initdb/pg_ctl and run every store test on it too).
APT_TEST_PACKAGES ?= gdal-bin chromium postgresql postgresql-postgis
# seconds apt waits for another apt/dpkg process to release its lock before giving up
APT_LOCK_WAIT ?= 600

.PHONY: all setup setup-dev apt run test check lint typecheck bench sample vendor clean

all: test

$(STAMP): setup.cfg pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	@touch $(STAMP)

$(DEV_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(DEV_STAMP)

# what running needs (make run): the venv with gridgeo; what testing needs on top: the dev extra and
# the test-only Debian packages
setup: $(STAMP)
setup-dev: $(DEV_STAMP)
	@$(MAKE) --no-print-directory apt APT_PACKAGES="$(APT_TEST_PACKAGES)"

# Installs the missing ones of APT_PACKAGES without recommends; waits up to APT_LOCK_WAIT s for a
# dpkg lock held by another apt process (then says so) instead of failing at once.
APT_PACKAGES ?=
apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != "0" ]; then \
	    echo "error: Debian packages needed:$$missing — run as root or: sudo apt-get install -y --no-install-recommends$$missing" >&2; exit 1; \
	  fi; \
	  lock="-o DPkg::Lock::Timeout=$(APT_LOCK_WAIT)"; \
	  echo "installing Debian packages:$$missing (waiting up to $(APT_LOCK_WAIT) s for the dpkg lock)"; \
	  if ! { apt-get $$lock update -qq && DEBIAN_FRONTEND=noninteractive apt-get $$lock install -y -qq --no-install-recommends $$missing; }; then \
	    echo "error: apt-get could not install$$missing (another apt/dpkg process holding the lock for more than $(APT_LOCK_WAIT) s, or no package source); see the lines above" >&2; exit 1; \
	  fi; \
	fi

# The main job on the bundled sample county: check the boundaries, build every
# level (blocks, grids, grid points, exclusive grids) from the rules file, plan a
# week of patrols for one grid of the built county, then serve it on $(HOST):$(PORT).
RULES  ?= boundaries/sample_rules.toml
run: setup
	@mkdir -p $(OUT)
	$(BIN)/gridgeo check $(SAMPLE) --layer villages --id code --parent township
	$(BIN)/gridgeo build $(RULES) -o $(OUT)/county.gpkg --report $(OUT)/build_report.json
	$(BIN)/gridgeo patrol $(OUT)/county.gpkg --grid $(GRID) --date $$(date +%F) --days 7 --rules $(RULES) \
	    -o $(OUT)/route.geojson --gpx $(OUT)/route.gpx
	$(BIN)/gridgeo serve $(OUT)/county.gpkg --host $(HOST) --port $(PORT) --rules $(RULES)

test: setup-dev
	$(BIN)/python -m pytest -q

lint: setup-dev
	$(BIN)/ruff check gridgeo service tests bench

typecheck: setup-dev
	$(BIN)/mypy

check: lint typecheck test

bench: setup-dev
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python bench/bench_boundaries.py
	$(BIN)/python bench/bench_blocks.py
	$(BIN)/python bench/bench_routing.py --sets tsiligirides,chao,top --time-limit 2 --sample 3 --peers pyvrp,vroom,ortools
	$(BIN)/python bench/bench_patrol.py
	$(BIN)/python bench/bench_build.py
	$(MAKE) apt APT_PACKAGES="wrk python3-gdal python3-venv"
	$(BIN)/python bench/bench_service.py --setup
	$(BIN)/python bench/bench_serving.py

# Refresh the vendored Leaflet in service/static/vendor from npm (package.json pins the version).
vendor:
	npm ci && npm run vendor && rm -rf node_modules

# Regenerate the committed sample county (deterministic by seed).
sample: setup
	$(BIN)/gridgeo synth --seed 7 --townships 23 --villages 220 --households 60000 -o $(SAMPLE)

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .mypy_cache .ruff_cache *.egg-info
