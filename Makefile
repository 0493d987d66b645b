# gridgeo — two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
SAMPLE  = boundaries/sample_county.gpkg
OUT    ?= out
HOST   ?= 127.0.0.1
PORT   ?= 8000
# a grid of the built sample county to plan a week of patrols for
GRID   ?= 36990000100101
# Debian packages some tests need, installed only when missing: gdal-bin (ogrinfo's OAPIF driver
# reads the API like QGIS does), chromium (headless screenshots of the map page).
APT_PACKAGES ?= gdal-bin chromium

.PHONY: all setup apt run test check lint typecheck bench sample vendor clean

all: test

$(STAMP): setup.cfg pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP) apt

apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != "0" ]; then \
	    echo "error: Debian packages needed:$$missing — run as root or: sudo apt-get install -y$$missing" >&2; exit 1; \
	  fi; \
	  apt-get update && apt-get install -y $$missing; \
	fi

# The main job on the bundled sample county: check the boundaries, build every
# level (blocks, grids, grid points, exclusive grids) from the rules file, plan a
# week of patrols for one grid of the built county, then serve it on $(HOST):$(PORT).
RULES  ?= boundaries/sample_rules.toml
run: setup
	@mkdir -p $(OUT)
	$(BIN)/gridgeo check $(SAMPLE) --layer villages --id code --parent township
	$(BIN)/gridgeo build $(RULES) -o $(OUT)/county.gpkg --report $(OUT)/build_report.json
	$(BIN)/gridgeo patrol $(OUT)/county.gpkg --grid $(GRID) --date $$(date +%F) --days 7 \
	    -o $(OUT)/route.geojson --gpx $(OUT)/route.gpx
	$(BIN)/gridgeo serve $(OUT)/county.gpkg --host $(HOST) --port $(PORT)

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check gridgeo service tests bench

typecheck: setup
	$(BIN)/mypy

check: lint typecheck test

bench: setup
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python bench/bench_boundaries.py
	$(BIN)/python bench/bench_blocks.py
	$(BIN)/python bench/bench_routing.py --sets tsiligirides,chao,top --time-limit 2 --sample 3 --peers pyvrp,vroom,ortools
	$(BIN)/python bench/bench_patrol.py
	$(BIN)/python bench/bench_build.py
	$(MAKE) apt APT_PACKAGES="wrk python3-gdal python3-venv"
	$(BIN)/python bench/bench_service.py --setup

# Refresh the vendored Leaflet in service/static/vendor from npm (package.json pins the version).
vendor:
	npm ci && npm run vendor && rm -rf node_modules

# Regenerate the committed sample county (deterministic by seed).
sample: setup
	$(BIN)/gridgeo synth --seed 7 --townships 23 --villages 220 --households 60000 -o $(SAMPLE)

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .mypy_cache .ruff_cache *.egg-info
