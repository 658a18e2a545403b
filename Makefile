# Two commands on a fresh machine:
#   make demo   set everything up, super-resolve a sample photo with the shipped one-step model
#   make test   set everything up, run the test suite
# Other targets: make data (Debian photos, sounds used for training/benchmarks), make train-sr,
# make train-sr-baseline, make bench-sr, make train-se, make bench-se.

VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTHON ?= python3

# Debian packages the code needs at run time (speech synthesis for the audio corpus and tests).
SYSTEM_PACKAGES := espeak-ng flite sox
# Debian packages that hold training/benchmark data: photos, and real recorded sounds (noise).
DATA_PACKAGES := opencv-doc sound-theme-freedesktop oxygen-sounds deepin-sound-theme yaru-theme-sound \
                 frozen-bubble-data pingus-data

.PHONY: demo test system data train-sr train-sr-baseline bench-sr train-se bench-se clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP) system
	$(PY) -m restore.sr.demo

test: $(STAMP) system
	$(PY) -m pytest -q

# Install missing Debian packages (apt-get when root; otherwise say what to install).
define apt_install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then true; \
	elif [ "$$(id -u)" = 0 ]; then echo "apt-get install$$missing"; apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; \
	else echo "please install the Debian packages:$$missing (sudo apt-get install$$missing)"; exit 1; fi
endef

system:
	$(call apt_install,$(SYSTEM_PACKAGES))

# Real photos (opencv-doc) and recorded sounds (sound themes, game effects) for training and benchmarks.
data: system
	$(call apt_install,$(DATA_PACKAGES))

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

# Reproduce the shipped speech models (predictive, SGMSE+ score, StoRM, consistency).
train-se: $(STAMP) data
	$(PY) -m experiments fit --config experiments/audio/se_predictive.yaml
	$(PY) -m experiments fit --config experiments/audio/se_score.yaml
	$(PY) -m experiments fit --config experiments/audio/se_storm.yaml
	$(PY) -m experiments fit --config experiments/audio/se_consistency.yaml
	for m in predictive score storm consistency; do rm -rf audio/weights/$$m && cp -r runs/se_$$m/pretrained audio/weights/$$m; done

bench-se: $(STAMP) data
	$(PY) -m experiments.audio.benchmark_se

clean:
	rm -rf $(VENV) demo_output .pytest_cache
