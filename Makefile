# Two commands on a fresh machine:
#   make demo   set everything up, super-resolve a sample photo with the shipped one-step model
#   make test   set everything up, run the test suite
# Other targets: make data (Debian photos used for training/benchmarks), make train-sr,
# make train-sr-baseline, make bench-sr.

VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTHON ?= python3

.PHONY: demo test data train-sr train-sr-baseline bench-sr clean

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

# Reproduce the shipped SR models (about 2 hours on 2 CPU cores), then the DDPM baseline.
train-sr: $(STAMP) data
	$(PY) -m experiments fit --config experiments/restore/sr_teacher.yaml
	rm -rf restore/sr/weights/resshift_x4 && cp -r runs/sr_teacher/pretrained restore/sr/weights/resshift_x4
	$(PY) -m experiments fit --config experiments/restore/sr_student_pixel.yaml
	$(PY) -m experiments fit --config experiments/restore/sr_student_detail.yaml
	rm -rf restore/sr/weights/onestep_x4 && cp -r runs/sr_student_detail/pretrained restore/sr/weights/onestep_x4

train-sr-baseline: $(STAMP) data
	$(PY) -m experiments fit --config experiments/restore/sr_ddpm_baseline.yaml
	rm -rf experiments/restore/baselines/sr3_ddpm_x4 && cp -r runs/sr_ddpm_baseline/pretrained experiments/restore/baselines/sr3_ddpm_x4

bench-sr: $(STAMP) data
	$(PY) -m experiments.restore.benchmark_sr

clean:
	rm -rf $(VENV) demo_output .pytest_cache
