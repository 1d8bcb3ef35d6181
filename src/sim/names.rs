//! The simple demo topic (`my_topic`): a person with a Russian full name and a timestamp, as
//! the reference's simple producer sends.

use rand::Rng;
use serde::Serialize;
use uuid::Uuid;

const MALE_FIRST: [&str; 20] = [
    "Александр",
    "Дмитрий",
    "Максим",
    "Сергей",
    "Андрей",
    "Алексей",
    "Артём",
    "Илья",
    "Кирилл",
    "Михаил",
    "Никита",
    "Матвей",
    "Роман",
    "Егор",
    "Иван",
    "Владимир",
    "Николай",
    "Павел",
    "Юрий",
    "Олег",
];
const FEMALE_FIRST: [&str; 20] = [
    "Анастасия",
    "Мария",
    "Анна",
    "Виктория",
    "Екатерина",
    "Наталья",
    "Марина",
    "Полина",
    "Дарья",
    "Алина",
    "Ольга",
    "Елена",
    "Татьяна",
    "Ирина",
    "Светлана",
    "Юлия",
    "Ксения",
    "Софья",
    "Вера",
    "Людмила",
];
/// Fathers' names from which patronymics are formed (stem, male suffix, female suffix).
const PATRONYMICS: [(&str, &str, &str); 12] = [
    ("Александр", "ович", "овна"),
    ("Дмитри", "евич", "евна"),
    ("Серге", "евич", "евна"),
    ("Андре", "евич", "евна"),
    ("Алексе", "евич", "евна"),
    ("Иван", "ович", "овна"),
    ("Владимир", "ович", "овна"),
    ("Николаев", "ич", "на"),
    ("Михайл", "ович", "овна"),
    ("Петр", "ович", "овна"),
    ("Юрьев", "ич", "на"),
    ("Олег", "ович", "овна"),
];
/// Surnames as (male, female).
const LAST: [(&str, &str); 16] = [
    ("Иванов", "Иванова"),
    ("Смирнов", "Смирнова"),
    ("Кузнецов", "Кузнецова"),
    ("Попов", "Попова"),
    ("Васильев", "Васильева"),
    ("Петров", "Петрова"),
    ("Соколов", "Соколова"),
    ("Михайлов", "Михайлова"),
    ("Новиков", "Новикова"),
    ("Фёдоров", "Фёдорова"),
    ("Морозов", "Морозова"),
    ("Волков", "Волкова"),
    ("Алексеев", "Алексеева"),
    ("Лебедев", "Лебедева"),
    ("Семёнов", "Семёнова"),
    ("Егоров", "Егорова"),
];

/// One message of `my_topic`.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct SimplePerson {
    pub uuid: Uuid,
    pub first_name: String,
    pub last_name: String,
    pub middle_name: String,
    /// ISO 8601, UTC, millisecond precision (`2026-11-25T10:00:00.123Z`).
    pub timestamp: String,
}

/// Draws a person with a consistent gender across first name, surname and patronymic.
pub fn draw_person<R: Rng>(rng: &mut R, now_ms: i64) -> SimplePerson {
    let female = rng.random_bool(0.5);
    let first = if female {
        FEMALE_FIRST[rng.random_range(0..FEMALE_FIRST.len())]
    } else {
        MALE_FIRST[rng.random_range(0..MALE_FIRST.len())]
    };
    let (m, f) = LAST[rng.random_range(0..LAST.len())];
    let (stem, ms, fs) = PATRONYMICS[rng.random_range(0..PATRONYMICS.len())];
    let random: [u8; 10] = rng.random();
    let ts = chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
    SimplePerson {
        uuid: uuid::Builder::from_unix_timestamp_millis(now_ms.max(0) as u64, &random).into_uuid(),
        first_name: first.to_string(),
        last_name: if female { f } else { m }.to_string(),
        middle_name: format!("{stem}{}", if female { fs } else { ms }),
        timestamp: ts.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn persons_are_consistent_and_serialise() {
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(1);
        for _ in 0..200 {
            let p = draw_person(&mut rng, 1_767_225_600_123);
            let female = FEMALE_FIRST.contains(&p.first_name.as_str());
            assert_eq!(p.last_name.ends_with('а'), female, "{p:?}");
            assert_eq!(p.middle_name.ends_with('а'), female, "{p:?}");
            assert_eq!(p.timestamp, "2026-01-01T00:00:00.123Z");
            assert_eq!(p.uuid.get_version_num(), 7);
            let json = serde_json::to_value(&p).unwrap();
            assert_eq!(json.as_object().unwrap().len(), 5);
        }
    }
}
