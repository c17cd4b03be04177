# `make demo`: set up a fresh clone and run the main job on bundled real data.
# `make test`: set up and run the lint, the documentation build and the test suite (what CI runs).
# `make docs`: build the documentation site into docs/_build/html (warnings are errors).

PYTHON ?= python3
VENV ?= .venv
# Label Studio (for `skcal serve`'s integration tests) lives in a virtualenv of its own
LS_VENV ?= .venv-labelstudio
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --constraint constraints.txt

.PHONY: demo test lint docs venv clean

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

# the documentation tools (the docs extra: Sphinx, numpydoc, sphinx-gallery, the PyData theme, MyST)
$(VENV)/.docs-installed: $(VENV)/.installed pyproject.toml constraints.txt
	$(PIP) -e ".[docs]"
	touch $@

# the guides, the API reference and the gallery, whose digits and single-cell examples run on their quick
# settings (about two minutes on two busy cores); -E re-reads every page, so no warning hides in a cached one
docs: $(VENV)/.docs-installed
	$(PY) -m sphinx -W --keep-going -E -b html docs docs/_build/html

test: lint docs
	SKCAL_REQUIRE_DATA=1 $(PY) -m pytest

clean:
	rm -rf $(VENV) $(LS_VENV) build *.egg-info
