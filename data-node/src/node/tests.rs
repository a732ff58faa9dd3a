//! What the node serves follows its catalogue view; only an explicit delete drops data.

use super::*;
use crate::storage::codec::EntryValue;
use tributary_proto::v1::{entity::Kind, Entity, Well};

fn view(owner: u64) -> CatalogView {
    CatalogView::from_entities(
        1,
        [Entity {
            kind: Some(Kind::Well(Well {
                name: "w".into(),
                default_well: true,
                owner_node: owner,
                ..Default::default()
            })),
        }],
    )
}

#[tokio::test]
async fn only_an_explicit_delete_drops_a_wells_data() {
    let main: Arc<dyn KvEngine> = Arc::new(MemoryEngine::new());
    let node = Node::with_engine(
        1,
        main,
        Box::new(|_| Err(crate::storage::StorageError::Engine("no cold".into()))),
        PathBuf::new(),
        None,
    )
    .unwrap();
    node.set_catalog(view(1)).unwrap();
    let tag = node.resolve_tag("t").await.unwrap();
    let w = node.owned_well("well", "w").unwrap();
    let value = EntryValue {
        tag,
        source: None,
        data: bytes::Bytes::from_static(b"x"),
        values: Default::default(),
    };
    node.write_entries(vec![(w, 1, value)], None, 0).unwrap();

    // An empty listing (a wiped control plane) or a move closes the well but keeps it.
    node.set_catalog(CatalogView::default()).unwrap();
    assert!(node.well("default:w").is_none());
    node.set_catalog(view(2)).unwrap();
    assert!(matches!(
        node.owned_well("well", "w"),
        Err(Error::FailedPrecondition(_))
    ));
    node.set_catalog(view(1)).unwrap();
    assert_eq!(node.owned_well("well", "w").unwrap().totals().entries, 1);

    node.apply_event(WatchEvent {
        revision: 2,
        r#type: EventType::Delete as i32,
        kind: EntityKind::Well as i32,
        name: "default:w".into(),
        entity: None,
    })
    .unwrap();
    assert!(matches!(
        node.owned_well("well", "w"),
        Err(Error::NotFound { .. })
    ));
    node.set_catalog(view(1)).unwrap();
    assert_eq!(node.owned_well("well", "w").unwrap().totals().entries, 0);
}
