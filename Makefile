# lambda-kit: build an AWS Lambda deployment zip from the project's lock, in Docker, reproducibly.
# Works as the repo's Makefile, with `make -f path/to/kit/Makefile`, or `include`d from yours.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:
.SUFFIXES:
MAKEFLAGS += --warn-undefined-variables --no-builtin-rules
# help is the default goal, unless a Makefile that includes this one has already chosen one.
ifeq ($(.DEFAULT_GOAL),)
.DEFAULT_GOAL := help
endif

# Where the kit's own files are, whoever includes this Makefile and from wherever. As given (relative
# when make runs in the repository), so a repository path with spaces never becomes make words.
KIT_MAKEFILE := $(lastword $(MAKEFILE_LIST))
KIT_DIR := $(patsubst %/,%,$(dir $(KIT_MAKEFILE)))

# ---- settings (override on the command line or in the environment) ----
PYTHON_VERSION ?= 3.12  ## Lambda Python runtime: 3.10 3.11 3.12 3.13 3.14
ARCH ?= x86_64  ## Lambda architecture: x86_64 or arm64
SRC ?= lambdas  ## folder whose contents go to the zip root (. for a package at the repository root)
EXCLUDE ?=  ## gitignore-style patterns, space-separated, relative to SRC, left out of the zip
ALLOW_OUTSIDE_LINKS ?= 0  ## 1: symlinks under SRC may point outside the repository (their targets are zipped)
ZIP ?= build.zip  ## the deployment zip to write
FUNCTIONS ?=  ## for make functions: folders under SRC that are each a function (* for all of them)
DIST ?= dist  ## where make functions and make layer write (DIST/NAME.zip, DIST/layer.zip)
INCLUDE_DEPS ?= 1  ## 0: make functions leaves the dependencies out (they come from make layer)
HANDLER ?= app.handler  ## module.function Lambda calls, relative to SRC
SLIM ?= 0  ## 1: drop packages' tests, type stubs, C sources, debug sections, botocore's API reference text
BUILDER ?= auto  ## auto: Docker when an engine answers, else local; docker or local: that one, no fallback
COMPILE ?= 0  ## 1: ship hash-based .pyc, compiled by the runtime's Python, for what the function imports
COMPILE_PROFILE ?= lambda-kit.imports  ## COMPILE=1 also compiles the modules listed here (written by make profile; keep it in git)
BASE_IMAGE ?=  ## build image; empty: the AWS SAM build image for PYTHON_VERSION on the engine's architecture
RUNTIME_IMAGE ?= public.ecr.aws/lambda/python:$(PYTHON_VERSION)-$(ARCH)  ## image make smoke runs the zip in (default: the Lambda base image)
EVENT ?=  ## JSON event file for make smoke (empty: {})
JSON ?= 0  ## 1: make smoke prints its report as JSON (init and invocation times, memory)
JUNIT ?=  ## for make check: also write the audit's findings here as a JUnit XML report (one test case per rule)
PIPFILE ?= Pipfile  ## the Pipfile; Pipfile.lock sits beside it
LOCK ?=  ## the lock to build from: Pipfile.lock, pylock.toml, uv.lock, poetry.lock or a hashed requirements.txt (empty: the project's one lock)
LOCK_GROUPS ?=  ## uv.lock, poetry.lock, pylock.toml: dependency groups the zip also gets (default: production only, no dev groups)
LOCK_EXTRAS ?=  ## uv.lock, poetry.lock, pylock.toml: the project's extras the zip gets
LOCK_PACKAGE ?=  ## uv.lock: the workspace member whose dependencies the zip gets (default: the project at the lock's folder)
INDEX_URL ?=  ## private package index replacing the lock's first source (env is safer for credentials)
EXTRA_INDEX_URLS ?=  ## space-separated extra package indexes (for packages the lock pins to no source)
CA_BUNDLE ?=  ## extra CA bundle (PEM) for HTTPS during the build, added to the system's; default: PIP_CERT
SOURCE_DATE_EPOCH ?=  ## timestamp of the code's zip entries, in seconds (empty: 1980-01-01; dependencies: always 1980-01-01)
PYTHON ?= python3  ## host Python (3.10+) that runs the helper
KIT_STATE ?= $(KIT_DIR)/.lambda-kit  ## this checkout's state: zip records, build log, a link to the helper's environment
KIT_CACHE ?=  ## the machine's cache, shared by every checkout: helper environments, dependency zips, wheelhouse (empty: $XDG_CACHE_HOME/lambda-kit, else ~/.cache/lambda-kit; set to KIT_STATE to keep all in the checkout)
CACHE_URL ?=  ## dependency cache shared by CI agents: s3://bucket/prefix or a folder on a shared mount (empty: none)
CACHE_PUSH ?=  ## 1: push builds to CACHE_URL; 0: only read it; empty: push, unless CACHE_TRUSTED_KEYS is set without CACHE_SIGNING_KEY
CACHE_SIGNING_KEY ?=  ## private key file (make cache-keygen) signing what this agent pushes to CACHE_URL; or export the key itself, never on the command line
CACHE_TRUSTED_KEYS ?=  ## public keys, or files of them, space-separated: only CACHE_URL entries one of them signed are used
KEY ?=  ## for make cache-keygen: the private key file to write (KEY.pub: its public key)
BENCH_RUNS ?= 3  ## runs per case for make bench
BENCH_CASES ?=  ## make bench runs only these (comma-separated: cold,no-op,code-only,lock change,init,shared,local cold,fresh agent,new checkout; empty: all)
CORPUS_TARGETS ?= 3.12-x86_64,3.11-arm64,3.13-x86_64,3.14-x86_64  ## make corpus: the runtime-arch targets swept
CORPUS_TOP ?= 1000  ## make corpus: the N most downloaded packages looked at (tests/data/top-pypi-1000.tsv)
CORPUS_LOADER ?= 0  ## 1: make corpus also asks the real loader (Docker) about each x86_64 zip
DEST ?=  ## the repository make install-kit copies the kit into
SETTINGS := PYTHON_VERSION ARCH SRC EXCLUDE ALLOW_OUTSIDE_LINKS ZIP FUNCTIONS DIST INCLUDE_DEPS HANDLER SLIM COMPILE COMPILE_PROFILE BUILDER BASE_IMAGE RUNTIME_IMAGE EVENT JSON PIPFILE LOCK LOCK_GROUPS LOCK_EXTRAS LOCK_PACKAGE INDEX_URL EXTRA_INDEX_URLS CA_BUNDLE \
	CORPUS_TARGETS CORPUS_TOP CORPUS_LOADER SOURCE_DATE_EPOCH PYTHON KIT_STATE KIT_CACHE CACHE_URL CACHE_PUSH CACHE_TRUSTED_KEYS KEY BENCH_RUNS BENCH_CASES DEST
# make keeps the spaces before a `##` comment in a value: trim every setting once.
$(foreach v,$(SETTINGS),$(eval $(v) := $(strip $(value $(v)))))
JUNIT := $(strip $(JUNIT))  # not a build setting: changing it rebuilds nothing

# ---- deploying; AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL and credentials come from the environment ----
FUNCTION_NAME ?=  ## for make deploy: the Lambda function to update (FUNCTION_NAME_<folder> for deploy-functions)
LAYER_NAME ?=  ## for make deploy-layer: the layer DIST/layer.zip is published as
S3_BUCKET ?=  ## deploy through this S3 bucket (always when set; needed above Lambda's 50 MiB direct upload)
S3_PREFIX ?=  ## key prefix in S3_BUCKET: the object is PREFIX/<sha256 of the zip>.zip
PUBLISH ?= 0  ## 1: make deploy publishes a version (refused if the code changed meanwhile)
ALIAS ?=  ## point this alias at the published version (needs PUBLISH=1)
ROLE ?=  ## IAM role ARN: make deploy creates a missing function with it
DRY_RUN ?= 0  ## 1: print what deploy would upload and call, change nothing
DEPLOY_SETTINGS := FUNCTION_NAME LAYER_NAME S3_BUCKET S3_PREFIX PUBLISH ALIAS ROLE DRY_RUN
$(foreach v,$(DEPLOY_SETTINGS),$(eval $(v) := $(strip $(value $(v)))))

# Secrets reach the helper through its environment, never its command line. CACHE_SIGNING_KEY is
# passed on as it came (a PEM key exported in the environment keeps its lines); the helper refuses
# a key itself given on make's command line (its origin tells), and drops it from its environment.
export INDEX_URL EXTRA_INDEX_URLS CA_BUNDLE SOURCE_DATE_EPOCH CACHE_URL CACHE_PUSH CACHE_SIGNING_KEY CACHE_TRUSTED_KEYS
export LAMBDA_KIT_SIGNING_KEY_ORIGIN := $(origin CACHE_SIGNING_KEY)
# What of SRC goes into a zip is decided by the helper alone (lambda_kit.code.sources), from these.
export EXCLUDE ALLOW_OUTSIDE_LINKS DIST
# What of a uv.lock, poetry.lock or pylock.toml the zip gets (lambda_kit.lock.lockformats reads them).
export LOCK_GROUPS LOCK_EXTRAS LOCK_PACKAGE
export LAMBDA_KIT_HOME := $(KIT_STATE)
export LAMBDA_KIT_CACHE := $(KIT_CACHE)
# An S3 cache needs boto3: the launcher installs it (scripts/aws-requirements.txt) when asked.
LAMBDA_KIT_EXTRAS ?=
ifneq ($(filter s3://%,$(CACHE_URL)),)
export LAMBDA_KIT_EXTRAS := $(LAMBDA_KIT_EXTRAS),aws
endif
# Signed cache entries need cryptography (scripts/sign-requirements.txt), installed the same way.
ifneq ($(CACHE_URL),)
ifneq ($(strip $(CACHE_TRUSTED_KEYS))$(if $(strip $(CACHE_SIGNING_KEY)),1),)
export LAMBDA_KIT_EXTRAS := $(LAMBDA_KIT_EXTRAS),sign
endif
endif

# A value as one shell word, whatever it holds: settings never reach a shell unquoted.
q = '$(subst ','"'"',$(1))'
HELPER := $(PYTHON) -S $(KIT_DIR)/scripts/lambda-kit  # -S: the launcher is stdlib only, and starts faster
# The kit's own commands start with SIGINT and SIGTERM ignored: Python's default handler would turn
# one that arrives while the interpreter starts, before the launcher's first line, into a traceback.
# The launcher's first lines take both over (held, then handled); one sent in those milliseconds is
# lost and the command runs to its end: the zip is then the new one, never half of one.
RUN_HELPER := trap '' INT TERM && $(HELPER)
# The lock the zip depends on: LOCK, else PIPFILE's, else the project's (the helper refuses two, and
# says which it used); with the file it was made from (the Pipfile, or a uv/poetry pyproject.toml).
LOCK_FILE := $(or $(LOCK),$(if $(filter-out Pipfile,$(PIPFILE)),$(PIPFILE).lock,$(or $(wildcard Pipfile.lock pylock.toml pylock.*.toml uv.lock poetry.lock requirements.txt),Pipfile.lock)))
LOCK_PIPFILES := $(patsubst %.lock,%,$(filter-out uv.lock poetry.lock %/uv.lock %/poetry.lock,$(filter %.lock,$(LOCK_FILE))))
LOCK_INPUTS := $(LOCK_FILE) $(LOCK_PIPFILES) $(wildcard $(addsuffix pyproject.toml,$(dir $(filter uv.lock poetry.lock %/uv.lock %/poetry.lock,$(LOCK_FILE)))))
LOCK_ARGS = $(if $(LOCK),--lock $(call q,$(LOCK))) $(if $(filter-out Pipfile,$(PIPFILE)),--pipfile $(call q,$(PIPFILE)))
# A uv.lock is checked by uv itself (scripts/uv-requirements.txt), installed the same way.
ifneq ($(filter uv.lock %/uv.lock,$(LOCK_FILE)),)
export LAMBDA_KIT_EXTRAS := $(LAMBDA_KIT_EXTRAS),uv
endif
KIT_FILES := $(KIT_DIR)/Dockerfile $(KIT_DIR)/scripts/lambda-kit $(KIT_DIR)/scripts/container-requirements.txt \
	$(wildcard $(KIT_DIR)/scripts/lambda_kit/*.py $(KIT_DIR)/scripts/lambda_kit/*/*.py)
SETTINGS_STAMP := $(KIT_STATE)/settings.$(subst /,_,$(ZIP)).txt
SOURCES_STAMP := $(KIT_STATE)/sources.$(subst /,_,$(ZIP)).stamp
KIT_VENV := $(if $(filter undefined,$(origin LAMBDA_KIT_VENV)),$(KIT_STATE)/venv,$(LAMBDA_KIT_VENV))
# The sources' stamp (SRC, the zip, the stamp): its content is the digest of what the zip takes from SRC
# (lambda_kit.code.sources decides), rewritten only when that changes, so no file name passes through make.
# The helper is asked again only when something under SRC (the kit's state aside), or a setting, has
# changed since it was last asked (find: nothing is listed, one match answers); its environment runs
# it directly once it exists, before that the launcher creates it.
sources_stamp = py=$(call q,$(KIT_VENV)/bin/python); checked=$(call q,$(3).checked); \
	if [[ -f $(call q,$(3)) && -f "$$checked" && ! $(call q,$(SETTINGS_STAMP)) -nt "$$checked" ]] && \
		found=$$(find -L $(call q,$(1)) -samefile $(call q,$(KIT_STATE)) -prune -o -cnewer "$$checked" -print -quit 2>/dev/null) && [[ -z "$$found" ]]; \
	then exit 0; fi; \
	trap '' INT TERM; : > "$$checked"; args=(--src $(call q,$(1)) --pipfile $(call q,$(PIPFILE)) --state-dir $(call q,$(KIT_STATE)) --out $(call q,$(2)) --stamp $(call q,$(3))); \
	if [[ -x "$$py" ]]; then bc=$(call q,$(KIT_VENV)/lambda-kit-bytecode); [[ $$bc == /* ]] || bc="$$PWD/$$bc"; PYTHONPATH=$(call q,$(KIT_DIR)/scripts) PYTHONPYCACHEPREFIX="$$bc" PYTHONDONTWRITEBYTECODE= "$$py" -m lambda_kit.code.sources "$${args[@]}"; \
	else $(HELPER) python -m lambda_kit.code.sources "$${args[@]}"; fi || { rm -f "$$checked"; exit 1; }

.PHONY: help
help:  ## list targets and settings (the default)
	@printf 'lambda-kit: build an AWS Lambda zip from Pipfile.lock, pylock.toml, uv.lock, poetry.lock or requirements.txt\n\nTargets:\n'
	@awk -F':.*##' '/^[a-z][a-z-]*:.*## /{printf "  %-12s %s\n", $$1, $$2}' $(KIT_MAKEFILE)
	@printf '\nSettings (make VAR=value):\n'
	@awk '/^[A-Z0-9_]+ \?=.*## /{name=$$1; sub(/^[^#]*## /, ""); printf "  %-18s %s\n", name, $$0}' $(KIT_MAKEFILE)
	@printf '\nNow: PYTHON_VERSION=%s ARCH=%s SRC=%s ZIP=%s HANDLER=%s BUILDER=%s\n     BASE_IMAGE=%s\n' \
		$(call q,$(PYTHON_VERSION)) $(call q,$(ARCH)) $(call q,$(SRC)) $(call q,$(ZIP)) $(call q,$(HANDLER)) $(call q,$(BUILDER)) $(call q,$(or $(BASE_IMAGE),(the AWS SAM build image)))

# Never deleted by make (.DELETE_ON_ERROR, or a signal while the helper runs): the helper replaces
# a zip atomically, so the file is always the last good zip or the new one.
.PRECIOUS: $(ZIP) $(DIST)/%.zip

.PHONY: package
package: $(ZIP)  ## build $(ZIP), in Docker or (no engine) on the host; nothing when no input changed

# What every build command shares; --fresh when make runs with -B.
BUILD_ARGS = $(LOCK_ARGS) --runtime $(call q,$(PYTHON_VERSION)) --arch $(call q,$(ARCH)) --base-image $(call q,$(BASE_IMAGE)) \
	--builder $(call q,$(BUILDER)) --state-dir $(call q,$(KIT_STATE)) $(if $(filter 1,$(SLIM)),--slim) $(if $(filter 1,$(COMPILE)),--compile --compile-profile $(call q,$(COMPILE_PROFILE))) \
	$(if $(findstring B,$(firstword -$(MAKEFLAGS))),--fresh)

# The zip is a real file: rebuilt only when the lock, its project file, kit, sources or settings change.
$(ZIP): $(LOCK_INPUTS) $(KIT_FILES) $(SOURCES_STAMP) $(SETTINGS_STAMP) $(if $(filter 1,$(COMPILE)),$(wildcard $(COMPILE_PROFILE)))
	@$(RUN_HELPER) package $(BUILD_ARGS) --src $(call q,$(SRC)) --out $(call q,$@) --handler $(call q,$(HANDLER))

# A missing Pipfile or lock is not make's "No rule to make target": the helper runs and says so.
$(LOCK_FILE) $(LOCK_PIPFILES): ;

# Several functions: one dependency build (the stamp), then each zip adds its own code to it,
# on the host, so make -j builds them in parallel safely. HANDLER_<name> overrides HANDLER.
FUNCTION_NAMES := $(if $(filter *,$(FUNCTIONS)),$(sort $(notdir $(patsubst %/,%,$(wildcard $(SRC)/*/)))),$(FUNCTIONS))
DEPS_STAMP := $(KIT_STATE)/deps.$(subst /,_,$(PIPFILE))$(if $(LOCK),.$(subst /,_,$(LOCK))).stamp
handler_for = $(if $(filter undefined,$(origin HANDLER_$(1))),$(HANDLER),$(HANDLER_$(1)))

.PHONY: functions
functions: $(FUNCTION_NAMES:%=$(DIST)/%.zip)  ## one zip per FUNCTIONS folder, one shared dependency build (make -j safe)
	@[[ -n $(call q,$(FUNCTION_NAMES)) ]] || { printf 'lambda-kit: error: no functions (FUNCTIONS=%s, SRC=%s)\nhint: make functions FUNCTIONS="*" builds every folder under SRC\n' $(call q,$(FUNCTIONS)) $(call q,$(SRC)) >&2; exit 2; }

$(DEPS_STAMP): $(LOCK_INPUTS) $(KIT_FILES) $(SETTINGS_STAMP) $(if $(filter 1,$(COMPILE)),$(wildcard $(COMPILE_PROFILE)))
	@$(RUN_HELPER) deps $(BUILD_ARGS)
	@touch $(call q,$@)

.SECONDEXPANSION:
$(DIST)/%.zip: $(DEPS_STAMP) $(if $(filter 0,$(INCLUDE_DEPS)),$(DIST)/layer.zip) \
		$(KIT_STATE)/sources.$(subst /,_,$(DIST))_%.zip.stamp
	@$(RUN_HELPER) package $(BUILD_ARGS) --src $(call q,$(SRC)/$*) --out $(call q,$@) --handler $(call q,$(call handler_for,$*)) \
		$(if $(filter 0,$(INCLUDE_DEPS)),--no-deps --layer $(call q,$(DIST)/layer.zip))

.PHONY: layer
layer: $(DIST)/layer.zip  ## the dependencies as a Lambda layer zip, under python/

$(DIST)/layer.zip: $(DEPS_STAMP)
	@$(RUN_HELPER) layer $(BUILD_ARGS) --out $(call q,$@)

$(SOURCES_STAMP): $(SETTINGS_STAMP) FORCE
	@$(call sources_stamp,$(SRC),$(ZIP),$@)

.PRECIOUS: $(SOURCES_STAMP) $(KIT_STATE)/sources.$(subst /,_,$(DIST))_%.zip.stamp
$(KIT_STATE)/sources.$(subst /,_,$(DIST))_%.zip.stamp: $(SETTINGS_STAMP) FORCE
	@$(call sources_stamp,$(SRC)/$*,$(DIST)/$*.zip,$@)

# Rewritten only when a setting that shapes the zip changes, so its date tells make when.
.PHONY: FORCE
$(SETTINGS_STAMP): FORCE
	@mkdir -p $(call q,$(@D)); new=$(call q,$(PYTHON_VERSION) $(ARCH) $(SRC) $(HANDLER) $(INCLUDE_DEPS) $(SLIM) $(COMPILE) $(BUILDER) $(BASE_IMAGE) $(SOURCE_DATE_EPOCH) $(EXCLUDE) $(ALLOW_OUTSIDE_LINKS) $(LOCK) $(LOCK_GROUPS) $(LOCK_EXTRAS) $(LOCK_PACKAGE)); \
	[[ -f $(call q,$@) && "$$(< $(call q,$@))" == "$$new" ]] || printf '%s\n' "$$new" > $(call q,$@)

# Deploying: the zip is built by the rules above, boto3 is installed on first use (LAMBDA_KIT_EXTRAS=aws).
AWS_HELPER = trap '' INT TERM && LAMBDA_KIT_EXTRAS="aws$${LAMBDA_KIT_EXTRAS:+,$$LAMBDA_KIT_EXTRAS}" $(HELPER)
DEPLOY_ARGS = --runtime $(call q,$(PYTHON_VERSION)) --arch $(call q,$(ARCH)) --s3-bucket $(call q,$(S3_BUCKET)) --s3-prefix $(call q,$(S3_PREFIX)) \
	$(if $(filter 1,$(DRY_RUN)),--dry-run)
FUNCTION_ARGS = $(if $(filter 1,$(PUBLISH)),--publish) --alias $(call q,$(ALIAS)) --role $(call q,$(ROLE)) $(DEPLOY_ARGS)
function_name_for = $(if $(filter undefined,$(origin FUNCTION_NAME_$(1))),$(1),$(FUNCTION_NAME_$(1)))

.PHONY: deploy
deploy: $(ZIP)  ## upload $(ZIP) to FUNCTION_NAME unless it runs it already (S3_BUCKET PUBLISH ALIAS ROLE DRY_RUN)
	@$(AWS_HELPER) deploy $(call q,$(ZIP)) --function $(call q,$(FUNCTION_NAME)) --handler $(call q,$(HANDLER)) $(FUNCTION_ARGS)

.PHONY: deploy-functions
deploy-functions: functions  ## make deploy for each zip of make functions, to FUNCTION_NAME_<folder> (default: the folder's name)
	@$(foreach f,$(FUNCTION_NAMES),$(AWS_HELPER) deploy $(call q,$(DIST)/$(f).zip) --function $(call q,$(call function_name_for,$(f))) \
		--handler $(call q,$(call handler_for,$(f))) $(FUNCTION_ARGS) && ) true

.PHONY: deploy-layer
deploy-layer: $(DIST)/layer.zip  ## publish DIST/layer.zip as LAYER_NAME unless its latest version has the same code
	@$(AWS_HELPER) deploy-layer $(call q,$(DIST)/layer.zip) --layer-name $(call q,$(LAYER_NAME)) $(DEPLOY_ARGS)

.PHONY: cache-keygen
cache-keygen:  ## write an Ed25519 key pair for signed CACHE_URL entries: KEY (private, mode 0600, never overwritten) and KEY.pub
	@trap '' INT TERM && LAMBDA_KIT_EXTRAS="sign$${LAMBDA_KIT_EXTRAS:+,$$LAMBDA_KIT_EXTRAS}" $(HELPER) cache-keygen $(call q,$(KEY))

.PHONY: check
check:  ## audit $(ZIP) for what Lambda would reject (also run by package)
	@$(RUN_HELPER) check $(call q,$(ZIP)) --runtime $(call q,$(PYTHON_VERSION)) --arch $(call q,$(ARCH)) --handler $(call q,$(HANDLER)) --find-lock $(LOCK_ARGS) \
		$(if $(JUNIT),--junit $(call q,$(JUNIT)))

# check and smoke take the zip as it is (never rebuilt here): `make package smoke` builds first.
.PHONY: smoke
smoke:  ## run the handler from $(ZIP) in the runtime image as Lambda would (EVENT=file.json)
	@$(RUN_HELPER) smoke $(call q,$(ZIP)) --handler $(call q,$(HANDLER)) --runtime $(call q,$(PYTHON_VERSION)) --arch $(call q,$(ARCH)) \
		--image $(call q,$(RUNTIME_IMAGE)) $(if $(EVENT),--event $(call q,$(EVENT))) $(if $(filter 1,$(JSON)),--json) --state-dir $(call q,$(KIT_STATE))

.PHONY: profile
profile:  ## run the handler from $(ZIP) as make smoke does; record what it imports in $(COMPILE_PROFILE) (runs your code)
	@$(RUN_HELPER) smoke $(call q,$(ZIP)) --handler $(call q,$(HANDLER)) --runtime $(call q,$(PYTHON_VERSION)) --arch $(call q,$(ARCH)) \
		--image $(call q,$(RUNTIME_IMAGE)) $(if $(EVENT),--event $(call q,$(EVENT))) --record-imports $(call q,$(COMPILE_PROFILE)) --state-dir $(call q,$(KIT_STATE))

.PHONY: test
# ruff (pinned with the test tools) lints and checks the format of the kit's own code first; then
# mypy (pinned too) checks the types of the folders mypy.ini lists, its cache in the checkout's state.
LINTED := $(wildcard $(KIT_DIR)/scripts $(KIT_DIR)/tests $(KIT_DIR)/bench)
test:  ## lint (ruff), type-check (mypy), then run the kit's tests (Docker tests need a running engine; with CI set they must not skip)
	@LAMBDA_KIT_EXTRAS=aws,test,uv $(HELPER) python -m ruff check --quiet $(LINTED)
	@LAMBDA_KIT_EXTRAS=aws,test,uv $(HELPER) python -m ruff format --check --quiet $(LINTED)
	@LAMBDA_KIT_EXTRAS=aws,test,uv $(HELPER) python -m mypy --config-file $(call q,$(KIT_DIR)/mypy.ini) --cache-dir $(call q,$(KIT_STATE)/mypy-cache)
	@LAMBDA_KIT_EXTRAS=aws,test,uv $(HELPER) python -m pytest $(KIT_DIR)/tests

# The benchmark lives in the kit's own repository, not in the files a user copies.
ifneq ($(wildcard $(KIT_DIR)/bench/run.py),)
.PHONY: bench
bench:  ## time the kit against the article's flow and the uv flow (kit repo only; writes bench/results.md)
	@LAMBDA_KIT_EXTRAS=aws,test $(HELPER) python $(KIT_DIR)/bench/run.py --runs $(call q,$(BENCH_RUNS)) $(if $(BENCH_CASES),--cases $(call q,$(BENCH_CASES)))

.PHONY: bench-profile
bench-profile:  ## where a cold build's time goes, phase by phase, both bench sets and builders (kit repo only)
	@LAMBDA_KIT_EXTRAS=aws,test $(HELPER) python $(KIT_DIR)/bench/profile.py
endif

# The corpus sweep, like the benchmark, lives in the kit's own repository only.
ifneq ($(wildcard $(KIT_DIR)/tests/corpus.py),)
.PHONY: corpus
corpus:  ## audit the zip of every popular package that ships native code, per target (kit repo only; writes bench/corpus.md)
	@LAMBDA_KIT_EXTRAS=aws,test $(HELPER) python $(KIT_DIR)/tests/corpus.py --targets $(call q,$(CORPUS_TARGETS)) \
		--top $(call q,$(CORPUS_TOP)) $(if $(filter 1,$(CORPUS_LOADER)),--loader)
endif

.PHONY: install-kit
install-kit:  ## copy the kit into $(DEST)/lambda-kit/, leaving the repo's own files alone
	@$(RUN_HELPER) install-kit $(call q,$(DEST))

# A zip goes only if its record (KIT_STATE/outputs/<id>.sha256) says the kit wrote these very bytes.
remove_own_zip = f=$(call q,$(realpath $(1))); rec="$$(printf '%s' "$$f" | sha256sum | cut -c1-24)"; \
	rec=$(call q,$(KIT_STATE)/outputs/)"$$rec.sha256"; \
	if [[ -n "$$f" && -f "$$rec" ]] && sha256sum --check --status "$$rec" 2>/dev/null; then rm -f "$$f"; \
	elif [[ -n "$$f" ]]; then echo "lambda-kit: clean: kept $$f (not written by the kit)"; fi

.PHONY: clean
clean:  ## remove what the kit wrote: its zips (not others), its state folder and this checkout's images
	@$(foreach f,$(ZIP) $(FUNCTION_NAMES:%=$(DIST)/%.zip) $(DIST)/layer.zip,$(call remove_own_zip,$(f));)
	@rm -f $(call q,$(dir $(ZIP))).$(call q,$(notdir $(ZIP))).lambda-kit-*.tmp
	@rm -rf $(call q,$(KIT_STATE))
	@id=$$(printf '%s' $(call q,$(realpath $(dir $(abspath $(firstword $(LOCK_FILE)))))) | sha256sum | cut -c1-12); \
	if command -v docker >/dev/null && docker info >/dev/null 2>&1; then \
		ids=$$(docker images -q --filter "label=org.lambda-kit.checkout=$$id" | sort -u); \
		[[ -z "$$ids" ]] || docker image rm --force $$ids >/dev/null; \
	fi
