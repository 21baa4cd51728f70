"""The age-attractiveness study of the dating-site paper
(:mod:`facecore.studies.age_attractiveness.study`; ``facecore study age-attractiveness``)."""
