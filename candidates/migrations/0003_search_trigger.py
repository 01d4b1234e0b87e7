from django.db import migrations

# The search vector and the trigram name are computed by the database on every insert and on
# every update of a searched column, so that all write paths (forms, bulk updates, COPY-based
# imports, raw SQL) keep search current without remembering to.
#
# Weights: A = name and email, B = title / headline / skills / company, C = location and tags,
# D = resume text. Names, emails, companies and places use the 'simple' configuration (no
# stemming: "Jones" stays "jones"); prose uses 'english' (so "engineers" finds "engineer").
# Queries therefore combine websearch_to_tsquery('simple', q) || websearch_to_tsquery('english', q).
FORWARD = r"""
CREATE OR REPLACE FUNCTION candidates_search_update() RETURNS trigger AS $$
BEGIN
    NEW.search_name := lower(btrim(coalesce(NEW.first_name, '') || ' ' || coalesce(NEW.last_name, '')));
    NEW.search_vector :=
        setweight(to_tsvector('simple', coalesce(NEW.first_name, '') || ' ' || coalesce(NEW.last_name, '') || ' ' || coalesce(NEW.email, '')), 'A')
        || setweight(to_tsvector('english', coalesce(NEW.current_title, '') || ' ' || coalesce(NEW.headline, '') || ' ' || array_to_string(NEW.skills, ' ')), 'B')
        || setweight(to_tsvector('simple', coalesce(NEW.current_company, '')), 'B')
        || setweight(to_tsvector('simple', coalesce(NEW.city, '') || ' ' || coalesce(NEW.country, '') || ' ' || array_to_string(NEW.tags, ' ')), 'C')
        || setweight(to_tsvector('english', left(coalesce(NEW.resume_text, ''), 100000)), 'D');
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER candidates_search_update
    BEFORE INSERT OR UPDATE OF first_name, last_name, email, current_title, headline, skills,
        current_company, city, country, tags, resume_text
    ON candidates_candidate
    FOR EACH ROW EXECUTE FUNCTION candidates_search_update();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS candidates_search_update ON candidates_candidate;
DROP FUNCTION IF EXISTS candidates_search_update();
"""


class Migration(migrations.Migration):
    dependencies = [("candidates", "0002_initial")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
