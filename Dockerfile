# facecore service image. Build: docker build -t facecore .   Run: docker run -p 8000:8000 facecore
# Everything the service needs is in the image: the bundled models/ and the registry packages
# that ship the dlib and MTCNN weights (the models/ folder is installed with the package as
# facecore_models). Nothing is downloaded when the container runs. Settings: see README (FACECORE_ANALYZER__*).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    OMP_NUM_THREADS=2

RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /srv/facecore
COPY setup.py pyproject.toml README.md ./
COPY facecore ./facecore
COPY app ./app
COPY models ./models
RUN pip install "setuptools==80.10.2" wheel \
    && pip install --no-build-isolation . \
    && pip install --no-deps "facenet-pytorch==2.6.0"

RUN useradd --system --uid 10001 facecore
USER facecore
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz').status != 200)"
CMD ["uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "8000"]
