# Two commands on a fresh machine:
#   make demo   set everything up, super-resolve a sample photo with the shipped one-step model
#   make test   set everything up, run the test suite
# Other targets: make data (Debian photos used for training/benchmarks), make train-sr, make bench-sr.

VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTHON ?= python3

.PHONY: demo test data train-sr bench-sr clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m restore.sr.demo

test: $(STAMP)
	$(PY) -m pytest -q

# Real photos from Debian's opencv-doc examples (training and benchmark data; tests do not need them).
data:
	@if [ -d /usr/share/doc/opencv-doc/examples/data ]; then echo "opencv-doc photos present"; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq opencv-doc; \
	else echo "install Debian package opencv-doc (sudo apt-get install opencv-doc)"; exit 1; fi

train-sr: $(STAMP) data
	$(PY) -m experiments fit --config experiments/restore/sr_teacher.yaml
	$(PY) -m experiments fit --config experiments/restore/sr_student_pixel.yaml
	$(PY) -m experiments fit --config experiments/restore/sr_student_detail.yaml

bench-sr: $(STAMP) data
	$(PY) -m experiments.restore.benchmark_sr

clean:
	rm -rf $(VENV) demo_output .pytest_cache
