# `make demo`: set up a fresh clone and run the main job on bundled real data.
# `make test`: set up and run the lint and the test suite (what CI runs).

PYTHON ?= python3
VENV ?= .venv
# Label Studio (for `skcal serve`'s integration tests) lives in a virtualenv of its own
LS_VENV ?= .venv-labelstudio
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --constraint constraints.txt

.PHONY: demo test lint venv clean

$(VENV)/.installed: pyproject.toml constraints.txt scripts/install_data.sh scripts/install_labelstudio.sh
	$(PYTHON) -m venv $(VENV)
	$(PIP) torch==2.13.0
	$(PIP) -e ".[test]"
	# medmnist declares torchvision (a CUDA build here) but its dataset code never imports it
	$(PIP) --no-deps "medmnist>=3.0"
	# Debian's Fashion-MNIST and WordNet (as root with apt), the VADER sentences into the data cache
	bash scripts/install_data.sh $(VENV)
	# Label Studio 1.23.2 in $(LS_VENV), its pins apart from the project's (SKCAL_NO_LABEL_STUDIO=1 skips it)
	bash scripts/install_labelstudio.sh $(LS_VENV) $(PYTHON)
	touch $@

venv: $(VENV)/.installed

demo: $(VENV)/.installed
	# one torch thread: these small networks gain nothing from two, and timings stay steady on a busy machine
	$(VENV)/bin/skcal bench --quick --dataset digits,pbmc68k --threads 1 --out results/quick
	# Fashion-MNIST on a 10,000-image pool and the 10,000 test images, labelled 10% to 50%: where CAL's speedup shows
	$(VENV)/bin/skcal bench --dataset fashion-mnist --pool-size 10000 --seeds 1 --methods retrain,finetune,er,sd \
		--budgets 0.1,0.2,0.3,0.4,0.5 --threads 1 --out results/quick

lint: $(VENV)/.installed
	$(PY) -m ruff check skcal tests examples benchmarks scripts

test: lint
	SKCAL_REQUIRE_DATA=1 $(PY) -m pytest

clean:
	rm -rf $(VENV) $(LS_VENV) build *.egg-info
