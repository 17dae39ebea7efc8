VENV ?= .venv
PY := $(VENV)/bin/python
# constraints.txt pins the CPU build of torch for this kind of machine.
PIP := $(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: demo test bench clean

# The package alone: what `make demo` needs.
$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PIP) -e .
	touch $@

# The test dependencies too (aeon's datasets, hypothesis, the Keras, Lightning and Ray integrations, playwright).
$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/lstm-doctor demo

test: $(VENV)/.installed-dev
	$(PY) -m pytest -q

bench: $(VENV)/.installed-dev
	$(PY) -m bench.loop_speed

clean:
	rm -rf $(VENV) build src/*.egg-info
