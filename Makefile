# The two README commands: `make demo` runs the main job, `make test` runs the tests.
.PHONY: setup demo engine-demo test test-slow bench music-data music-vae music-dit music-turbo music-models video-sr-data video-sr-models voice-data voice-codec voice-models

PY := .venv/bin/python
PROMPT ?= lofi piano and drums, 84 bpm, A minor

setup:
	./scripts/setup.sh

# The main job: 30 s of music from the shipped house models.
demo: setup
	mkdir -p out
	.venv/bin/demon render music --prompt "$(PROMPT)" --seconds 30 --seed 1 --out out/demo.wav

# The streaming core alone: live changes, their onsets, parity.
engine-demo: setup
	.venv/bin/demon demo

test: setup
	$(PY) -m pytest -q

test-slow: setup
	$(PY) -m pytest -q -m slow

bench: setup
	$(PY) bench/ring.py
	$(PY) bench/decode.py
	$(PY) bench/music_quality.py
	$(PY) bench/live_music.py
	$(PY) bench/video_sr.py
	$(PY) bench/voice.py --backend ort
	$(PY) bench/backends.py

# Reproducing the house music models (about 5 h on 2 cores): corpus, then VAE, then DiT.
music-data: setup
	$(PY) -m pipelines.music.data --out data/music --clips 1600 --seconds 10 --seed 0

video-sr-data: setup
	scripts/setup.sh --video-sr-corpus
	$(PY) -m pipelines.video_sr.data --out data/video_sr --clips 1200 --frames 12 --size 128 --seed 0

voice-data: setup
	$(PY) -m pipelines.voice.data --out data/voice --speakers 20 --human-variants 4 --sentences 100 --seed 0

# the corpus once (about 6 min): the voice models train on it
data/voice/metadata.jsonl:
	$(MAKE) voice-data

# the codec: 50 min whole, then 25 min of the decoder alone with the timbre-statistics term
# (the latents, and so the converter, do not change in the second stage)
voice-codec: setup data/voice/metadata.jsonl
	$(PY) -m pipelines.voice.train_codec --data data/voice --out models/voice --minutes 50
	$(PY) -m pipelines.voice.train_codec --data data/voice --out models/voice --init models/voice --decoder-only \
		--stats 1 --lr 2e-4 --minutes 25

# The voice models (about 2.5 h on 2 cores): the corpus if missing, the codec, then the converter on its
# latents: 30 min of flow matching alone, then 30 min with half of each batch converting between speakers
# saying the same sentence (aligned by DTW).
voice-models: voice-codec
	$(PY) -m pipelines.voice.train --data data/voice --models models/voice --minutes 30 --parallel 0
	$(PY) -m pipelines.voice.train --data data/voice --models models/voice --init models/voice --minutes 30 --lr 5e-4

# The video SR house models: one cascade per scale (upsampler, decoder, encoder, refiner), 2x and 4x side by side,
# 50 min each on one core (about 55 min in all, with the held-out evaluation), on the corpus `make video-sr-data` makes.
video-sr-models: setup
	$(PY) -m pipelines.video_sr.train --data data/video_sr --out models/video_sr --minutes 50 --jobs 2 --loss mse

# The VAE (about 2 h 45 min): STFT alone, then with the chroma loss, then the decoder
# alone (the encoder, and so the latents a DiT learns, unchanged).
music-vae: setup
	$(PY) -m pipelines.music.train_codec --data data/music --minutes 45 --floor 1e-5 --chroma 0 --out models/music/vae
	$(PY) -m pipelines.music.train_codec --data data/music --minutes 60 --init models/music/vae --out models/music/vae
	$(PY) -m pipelines.music.train_codec --data data/music --init models/music/vae --decoder-only --chroma 2 --floor 0.05 --minutes 60 --out models/music/vae

# The DiT and condition encoder (about 3 h): a caption-only DiT first (build/music_stage1),
# whose weights start the complete folder's training; then two runs of it, the second
# resuming the first, the clips' latents cached (and grown) in build/.
music-dit: setup
	mkdir -p build/music_stage1 && ln -sfn ../../models/music/vae build/music_stage1/vae
	$(PY) -m pipelines.music.train_dit --data data/music --models build/music_stage1 --minutes 40 --clips 640
	$(PY) -m pipelines.music.train_dit --data data/music --models build/music_stage1 --minutes 15 --clips 640 --init
	$(PY) -m pipelines.music.train_folder --data data/music --vae models/music/vae --out build/music_folder1 \
	    --init build/music_stage1/transformer --clips 640 --encode-minutes 12 --batch 16 --lr 3e-4 --minutes 36 \
	    --cache build/music_latents.safetensors
	$(PY) -m pipelines.music.train_folder --data data/music --vae models/music/vae --out models/music \
	    --init build/music_folder1 --clips 1365 --encode-minutes 14 --batch 16 --lr 2e-4 --minutes 85 \
	    --cache build/music_latents.safetensors

# The turbo house folder (about 45 min): the base folder distilled to 2 steps with APG 7 in its
# weights (10 min of teacher trajectories, 30 of student), its VAE and condition encoder linked.
music-turbo: setup
	$(PY) -m pipelines.music.distill_turbo --teacher models/music --out models/music_turbo --link-teacher \
	    --clips 832 --cache build/music_latents.safetensors --teacher-minutes 10 --minutes 30 --lr 2e-4

music-models: music-data music-vae music-dit music-turbo
